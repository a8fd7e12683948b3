"""``report.html``: one self-contained page (report tables + plots embedded as base64 PNG).

Opens in any browser from the file alone (no scripts, no network). The report itself is also
embedded verbatim as JSON (``<script type="application/json" id="report-json">``) so tools
can read the page; every number in the tables is formatted from that same dict.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path
from typing import Any, Iterable

from .report_plots import write_plots
from .stats import Answer

CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: left; font-size: 14px; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #a00; } img { max-width: 100%; border: 1px solid #ddd; margin: 6px 0; }
.small { color: #666; font-size: 12px; }
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def fmt(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def table(rows: Iterable[tuple[str, str, str | None]], header: tuple[str, ...] | None = None) -> str:
    """Rows of (name, value, data-key); numbers right-aligned."""
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
    for name, value, key in rows:
        attr = f' data-key="{esc(key)}"' if key else ""
        out.append(f"<tr><td>{esc(name)}</td><td class=\"num\"{attr}>{esc(value)}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{esc(alt)}" data-plot="{esc(alt)}" src="data:image/png;base64,{data}">'


def page(title: str, body: str, embedded: dict[str, Any]) -> str:
    blob = json.dumps(embedded).replace("</", "<\\/")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
            f"<h1>{esc(title)}</h1>\n<p class=\"small\">written {esc(time.strftime('%Y-%m-%d %H:%M:%S'))}"
            f" by fer-bag</p>\n{body}\n"
            f"<script type=\"application/json\" id=\"report-json\">{blob}</script>\n"
            "</body></html>\n")


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    lat = report["latency_ms"]
    rows = [
        ("frames published", fmt(report["frames_published"]), "frames_published"),
        ("frames answered", fmt(report["frames_answered"]), "frames_answered"),
        ("answered", fmt(100 * report["answered_ratio"], 1, " %"), "answered_ratio"),
        ("output rate", fmt(report["fps"], 2, " frames/s"), "fps"),
        ("latency p50", fmt(lat["p50"], 1, " ms"), "latency_ms.p50"),
        ("latency p95", fmt(lat["p95"], 1, " ms"), "latency_ms.p95"),
        ("latency max", fmt(lat["max"], 1, " ms"), "latency_ms.max"),
        ("faces per answered frame", fmt(report["faces_per_frame"], 3), "faces_per_frame"),
    ]
    if "accuracy" in report:
        acc = report["accuracy"]
        rows.append(("accuracy (labelled answered frames)",
                     "-" if acc is None else fmt(100 * acc, 1, " %"), "accuracy"))
    return rows


def report_body(report: dict[str, Any], plots: dict[str, Path]) -> str:
    parts = ["<h2>Summary</h2>", table(summary_rows(report))]
    if report["frames_unanswered"]:
        parts.append("<h2>Frames without an answer</h2>")
        parts.append(table(((reason, str(n), None) for reason, n in
                            report["frames_unanswered"].items()), ("reason", "frames")))
    if report.get("node"):
        parts.append("<h2>The node's own counters (diagnostics)</h2>")
        parts.append(table((k, str(v), f"node.{k}") for k, v in report["node"].items()))
    if report["label_histogram"]:
        total = sum(report["label_histogram"].values())
        parts.append("<h2>Labels over all faces</h2>")
        parts.append(table(((k, f"{v} ({100 * v / total:.0f} %)", f"label_histogram.{k}")
                            for k, v in report["label_histogram"].items()), ("label", "faces")))
    captions = {"timeline": "Emotion timeline per track", "latency": "Latency over time",
                "confusion": "Confusion matrix"}
    for kind, path in plots.items():
        parts.append(f"<h2>{esc(captions[kind])}</h2>")
        parts.append(img(path, kind))
    return "\n".join(parts)


def write_report_html(out: Path, report: dict[str, Any], answers: list[Answer],
                      rows: list[tuple[int, int, int]], expected: dict[int, str] | None,
                      title: str) -> Path:
    """Writes the PNGs and ``out/report.html``; returns the page's path."""
    plots = write_plots(out, report, answers, rows)
    path = out / "report.html"
    path.write_text(page(title, report_body(report, plots), report))
    return path
