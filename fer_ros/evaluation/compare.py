"""``fer-bag evaluate --compare A.yaml B.yaml``: one bag through two node configurations.

Each params file gets a full evaluation of its own (its own node, ``OUT/<name>/`` with
report.json, plots and report.html); then the two are set side by side: answered frames,
output rate, latency, faces per frame, accuracy with ``--labels``, and the **label agreement**
between the two on the frames both answered (the label of the largest face, ``none`` for no
face). Written as ``OUT/compare.json`` and ``OUT/compare.html``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..bag.errors import BagError
from .evaluate import EvalOptions, EvalResult, run_evaluation
from .report_html import esc, fmt, img, page, summary_rows
from .stats import first_answers


def _names(a: str, b: str) -> tuple[str, str]:
    na, nb = Path(a).stem, Path(b).stem
    return (f"A-{na}", f"B-{nb}") if na == nb else (na, nb)


def agreement(a: EvalResult, b: EvalResult) -> dict[str, Any]:
    fa, fb = first_answers(a.answers), first_answers(b.answers)
    both = sorted(set(fa) & set(fb))
    same = sum(fa[i].main_label == fb[i].main_label for i in both)
    return {"frames_answered_by_both": len(both),
            "label_agreement": round(same / len(both), 4) if both else None}


def compare(opts: EvalOptions, params_a: str, params_b: str) -> dict[str, Any]:
    """Runs both evaluations; returns (and writes) the comparison."""
    for p in (params_a, params_b):
        if not Path(p).is_file():
            raise BagError(f"{p}: no such params file")
    if not opts.spawn:
        raise BagError("--compare starts the node twice with its params files: drop --no-spawn")
    names = _names(params_a, params_b)
    results = []
    for name, params in zip(names, (params_a, params_b)):
        sub = replace(opts, out=Path(opts.out) / name, params_file=params, require_answers=False)
        results.append(run_evaluation(sub))
    doc = {"bag": opts.bag,
           "configs": {name: {"params_file": params, "out": str(r.out), "report": r.report}
                       for name, params, r in zip(names, (params_a, params_b), results)},
           **agreement(*results)}
    out = Path(opts.out)
    (out / "compare.json").write_text(json.dumps(doc, indent=1) + "\n")
    _write_html(out / "compare.html", doc, names, results)
    return doc


def format_compare(doc: dict[str, Any]) -> str:
    names = list(doc["configs"])
    reports = [doc["configs"][n]["report"] for n in names]
    rows = [[name for name, _, _ in summary_rows(reports[0])]]
    for r in reports:
        rows.append([value for _, value, _ in summary_rows(r)])
    width = max(len(x) for x in rows[0])
    cols = [max(len(names[k]), *(len(v) for v in rows[k + 1])) for k in range(2)]
    lines = [f"fer-bag evaluate {doc['bag']} --compare",
             f"  {'':<{width}}  {names[0]:>{cols[0]}}  {names[1]:>{cols[1]}}"]
    for i, label in enumerate(rows[0]):
        lines.append(f"  {label:<{width}}  {rows[1][i]:>{cols[0]}}  {rows[2][i]:>{cols[1]}}")
    agree = doc["label_agreement"]
    lines.append(f"  label agreement: {'-' if agree is None else f'{100 * agree:.1f} %'} of "
                 f"{doc['frames_answered_by_both']} frames answered by both")
    return "\n".join(lines)


def _write_html(path: Path, doc: dict[str, Any], names: tuple[str, str],
                results: list[EvalResult]) -> None:
    a_rows, b_rows = (summary_rows(r.report) for r in results)
    body = ["<h2>Side by side</h2><table><tr><th></th>"
            + "".join(f"<th>{esc(n)}<br><span class=\"small\">"
                      f"{esc(doc['configs'][n]['params_file'])}</span></th>" for n in names)
            + "</tr>"]
    for (label, va, key), (_, vb, _) in zip(a_rows, b_rows):
        body.append(f"<tr><td>{esc(label)}</td><td class=\"num\" data-key=\"A.{esc(key)}\">"
                    f"{esc(va)}</td><td class=\"num\" data-key=\"B.{esc(key)}\">{esc(vb)}</td></tr>")
    agree = doc["label_agreement"]
    body.append(f"<tr><td>label agreement (frames both answered)</td><td class=\"num\" colspan=2 "
                f"data-key=\"label_agreement\">{esc(fmt(None if agree is None else 100 * agree, 1, ' %'))}"
                f" of {doc['frames_answered_by_both']}</td></tr></table>")
    for name, r in zip(names, results):
        body.append(f"<h2>{esc(name)}</h2>")
        for kind in ("timeline", "latency", "confusion"):
            if (r.out / f"{kind}.png").is_file():
                body.append(img(r.out / f"{kind}.png", f"{name}-{kind}"))
    path.write_text(page(f"fer-bag evaluate {doc['bag']} --compare", "\n".join(body), doc))
