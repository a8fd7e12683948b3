"""The evaluate report: answered frames, output rate, latency, faces, labels, accuracy (ROS-free)."""

from __future__ import annotations

import csv
import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bag.errors import BagError

NO_FACE = "none"  # the prediction for a labelled frame in which no face was found


@dataclass
class Answer:
    """The node's answer to one played frame."""

    frame: int              # index of the frame among the played image messages
    receipt_ns: int         # when the answer arrived (wall clock)
    latency_ms: float       # receipt - image stamp (stamped at publish)
    faces: list[tuple[str, int]] = field(default_factory=list)  # (label, box area px)
    labels: list[str] = field(default_factory=list)             # the classifier's classes
    track_ids: list[int] = field(default_factory=list)          # Emotion.id per face
    probabilities: list[list[float]] = field(default_factory=list)  # per face, over labels

    @property
    def main_label(self) -> str:
        """The label of the largest face (the frame's subject), or NO_FACE."""
        return max(self.faces, key=lambda f: f[1])[0] if self.faces else NO_FACE


def load_labels(path: str | Path, original_stamps_ns: list[int]) -> dict[int, str]:
    """Expected labels by frame index from a csv of ``key,label`` rows.

    ``key`` is a frame index (0-based, among the played image messages), a stamp in seconds
    (with a decimal point) or a stamp in integer nanoseconds (>= 1e12), matched to the nearest
    original header stamp within 1 ms. An optional header row and ``#`` comments are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise BagError(f"{path}: no such labels file (csv rows: frame index or stamp, label)")
    stamps = sorted((s, i) for i, s in enumerate(original_stamps_ns))
    keys = [s for s, _ in stamps]
    expected: dict[int, str] = {}
    with path.open(newline="") as f:
        for row_no, row in enumerate(csv.reader(f), 1):
            if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                continue
            key = row[0].strip()
            if len(row) < 2 or not row[1].strip():
                raise BagError(f"{path}:{row_no}: expected 'frame index or stamp, label'")
            label = row[1].strip().lower()
            if not re.fullmatch(r"\d+(\.\d*)?", key):
                if row_no == 1:
                    continue  # header row
                raise BagError(f"{path}:{row_no}: {key!r} is not a frame index or a stamp")
            if "." in key or int(key) >= 10**12:
                ns = round(float(key) * 1e9) if "." in key else int(key)
                pos = bisect_left(keys, ns)
                near = [p for p in (pos - 1, pos) if 0 <= p < len(keys)]
                best = min(near, key=lambda p: abs(keys[p] - ns), default=None)
                if best is None or abs(keys[best] - ns) > 1_000_000:
                    raise BagError(f"{path}:{row_no}: stamp {key} matches no frame of the bag")
                expected[stamps[best][1]] = label
            else:
                index = int(key)
                if index >= len(original_stamps_ns):
                    raise BagError(f"{path}:{row_no}: frame {index} is beyond the "
                                   f"{len(original_stamps_ns)} frames played")
                expected[index] = label
    if not expected:
        raise BagError(f"{path}: no labelled frames")
    return expected


def _r(x: float, nd: int = 2) -> float:
    return round(float(x), nd)


def first_answers(answers: list[Answer]) -> dict[int, Answer]:
    """The first answer per frame, by frame index."""
    by_frame: dict[int, Answer] = {}
    for a in sorted(answers, key=lambda a: a.receipt_ns):
        by_frame.setdefault(a.frame, a)
    return by_frame


def summarize(frames_published: int, answers: list[Answer],
              expected: dict[int, str] | None = None,
              unanswered: dict[str, int] | None = None,
              node_counters: dict[str, int] | None = None) -> dict[str, Any]:
    """The report as a JSON-ready dict (keys documented in the README). ``unanswered``:
    frames without an answer, counted per reason; ``node_counters``: the node's own counts
    (frames received / processed / refused as bad / errors) from its diagnostics."""
    by_frame = first_answers(answers)  # the first answer per frame counts
    got = list(by_frame.values())
    n = len(got)
    lat = np.array([a.latency_ms for a in got]) if got else np.zeros(0)
    span_s = (got[-1].receipt_ns - got[0].receipt_ns) / 1e9 if n > 1 else 0.0
    faces = sum(len(a.faces) for a in got)
    histogram = Counter(label for a in got for label, _ in a.faces)
    report: dict[str, Any] = {
        "frames_published": frames_published,
        "frames_answered": n,
        "answered_ratio": _r(n / frames_published, 4) if frames_published else 0.0,
        "fps": _r((n - 1) / span_s) if span_s > 0 else 0.0,
        "latency_ms": {"p50": _r(np.percentile(lat, 50)) if n else None,
                       "p95": _r(np.percentile(lat, 95)) if n else None,
                       "max": _r(lat.max()) if n else None},
        "faces_per_frame": _r(faces / n, 3) if n else 0.0,
        "label_histogram": dict(sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))),
        "frames_unanswered": dict(sorted((unanswered or {}).items(), key=lambda kv: -kv[1])),
    }
    if node_counters is not None:
        report["node"] = dict(node_counters)
    if expected is not None:
        report.update(_accuracy(by_frame, expected))
    return report


def _accuracy(by_frame: dict[int, Answer], expected: dict[int, str]) -> dict[str, Any]:
    """Accuracy over the labelled frames that were answered (the largest face's label)."""
    pairs = [(label, by_frame[i].main_label) for i, label in sorted(expected.items())
             if i in by_frame]
    classes = next((list(a.labels) for a in by_frame.values() if a.labels), [])
    for want, got in pairs:
        for name in (want, got):
            if name not in classes and name != NO_FACE:
                classes.append(name)
    if any(got == NO_FACE for _, got in pairs):
        classes.append(NO_FACE)
    index = {name: k for k, name in enumerate(classes)}
    matrix = [[0] * len(classes) for _ in classes]
    for want, got in pairs:
        matrix[index[want]][index[got]] += 1
    correct = sum(want == got for want, got in pairs)
    return {
        "accuracy": _r(correct / len(pairs), 4) if pairs else None,
        "confusion": {"labels": classes, "matrix": matrix, "frames": len(pairs),
                      "labelled_unanswered": len(expected) - len(pairs)},
    }


def format_table(report: dict[str, Any], title: str) -> str:
    """The report as readable text."""
    lat = report["latency_ms"]
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    rows = [
        ("frames published", str(report["frames_published"])),
        ("frames answered", f"{report['frames_answered']} ({100 * report['answered_ratio']:.1f} %)"),
        ("output rate", f"{report['fps']:.2f} frames/s"),
        ("latency p50/p95/max", f"{fmt(lat['p50'])} / {fmt(lat['p95'])} / {fmt(lat['max'])} ms"),
        ("faces per frame", f"{report['faces_per_frame']:.3f}"),
    ]
    total = sum(report["label_histogram"].values()) or 1
    hist = ", ".join(f"{k} {v} ({100 * v / total:.0f} %)" for k, v in report["label_histogram"].items())
    rows.append(("labels (all faces)", hist or "-"))
    for reason, count in report.get("frames_unanswered", {}).items():
        rows.append(("unanswered", f"{count} x {reason}"))
    if "accuracy" in report:
        acc = report["accuracy"]
        conf = report["confusion"]
        rows.append(("accuracy", "-" if acc is None else
                     f"{100 * acc:.1f} % of {conf['frames']} labelled answered frames"))
    width = max(len(k) for k, _ in rows)
    lines = [title] + [f"  {k:<{width}}  {v}" for k, v in rows]
    if "confusion" in report and report["confusion"]["frames"]:
        lines += ["", "  confusion (rows expected, columns predicted = largest face):"]
        names = report["confusion"]["labels"]
        cw = max(8, *(len(n) for n in names)) + 1
        lines.append("  " + " " * cw + "".join(f"{n:>{cw}}" for n in names))
        for name, row in zip(names, report["confusion"]["matrix"]):
            lines.append("  " + f"{name:<{cw}}" + "".join(f"{v:>{cw}}" for v in row))
    return "\n".join(lines)
