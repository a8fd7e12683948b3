"""PNG plots of an evaluation (matplotlib, no display needed): what a person looks at.

* ``timeline.png``: per track id (the node's face tracking), the probability of every label
  over the bag's time, one panel per track (the MAX_TRACKS most seen), with gaps where that
  face was not in the answer;
* ``latency.png``: latency of every answered frame over the bag's time, and its histogram;
* ``confusion.png`` (with labels): the confusion matrix, rows expected, columns predicted.

Every figure is WIDTH_PX wide at DPI; heights are fixed per kind (``figure_size``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .stats import Answer, first_answers

DPI = 100
WIDTH_PX = 1000
MAX_TRACKS = 6


def figure_size(kind: str, panels: int = 1) -> tuple[int, int]:
    """(width, height) in pixels of a plot kind ("timeline" with ``panels`` tracks)."""
    heights = {"timeline": 80 + 200 * panels, "latency": 360, "confusion": 600}
    return WIDTH_PX, heights[kind]


def _figure(kind: str, panels: int = 1) -> Figure:
    w, h = figure_size(kind, panels)
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, format="png")  # no bbox "tight": the size stays as declared
    return path


def _times_s(rows: list[tuple[int, int, int]]) -> dict[int, float]:
    """Frame index -> seconds since the first frame, by the recorded (original) stamps."""
    if not rows:
        return {}
    t0 = min(original for _, original, _ in rows)
    return {frame: (original - t0) / 1e9 for frame, original, _ in rows}


def timeline(answers: list[Answer], rows: list[tuple[int, int, int]], path: Path) -> Path | None:
    by_frame = first_answers(answers)
    if not by_frame:
        return None
    times = _times_s(rows)
    frames = sorted(by_frame)
    seen: dict[int, int] = {}
    for a in by_frame.values():
        for tid in a.track_ids:
            seen[tid] = seen.get(tid, 0) + 1
    tracks = sorted(seen, key=lambda t: (-seen[t], t))[:MAX_TRACKS]
    labels = next((a.labels for a in by_frame.values() if a.labels), [])
    fig = _figure("timeline", max(1, len(tracks)))
    fig.subplots_adjust(left=0.07, right=0.86, top=1 - 30 / fig.bbox.height,
                        bottom=55 / fig.bbox.height, hspace=0.35)
    if not tracks:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no face found in any answered frame", ha="center", va="center")
        ax.set_axis_off()
        return _save(fig, path)
    x = np.array([times.get(f, 0.0) for f in frames])
    axes = fig.subplots(len(tracks), 1, sharex=True, squeeze=False)[:, 0]
    for ax, tid in zip(axes, tracks):
        probs = np.full((len(frames), len(labels)), np.nan)
        for row, frame in enumerate(frames):
            a = by_frame[frame]
            if tid in a.track_ids:
                p = a.probabilities[a.track_ids.index(tid)]
                if len(p) == len(labels):
                    probs[row] = p
        for k, label in enumerate(labels):
            ax.plot(x, probs[:, k], label=label, linewidth=1.2)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"track {tid}\nprobability", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    axes[0].set_title(f"emotion probabilities per track ({len(tracks)} of {len(seen)} tracks; "
                      "gaps: face not seen)", fontsize=10)
    axes[-1].set_xlabel("bag time (s)")
    return _save(fig, path)


def latency(answers: list[Answer], rows: list[tuple[int, int, int]], path: Path) -> Path | None:
    by_frame = first_answers(answers)
    if not by_frame:
        return None
    times = _times_s(rows)
    frames = sorted(by_frame)
    x = np.array([times.get(f, 0.0) for f in frames])
    y = np.array([by_frame[f].latency_ms for f in frames])
    fig = _figure("latency")
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    fig.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.15, wspace=0.2)
    left.plot(x, y, ".", markersize=3)
    left.set_xlabel("bag time (s)")
    left.set_ylabel("latency (ms)")
    left.set_title("latency of each answered frame", fontsize=10)
    left.grid(alpha=0.3)
    right.hist(y, bins=min(40, max(5, len(y) // 5)), orientation="horizontal")
    right.set_xlabel("frames")
    right.set_title(f"p50 {np.percentile(y, 50):.1f} ms, p95 {np.percentile(y, 95):.1f} ms",
                    fontsize=10)
    right.sharey(left)
    right.grid(alpha=0.3)
    return _save(fig, path)


def confusion(report: dict[str, Any], path: Path) -> Path | None:
    conf = report.get("confusion")
    if not conf or not conf["frames"]:
        return None
    names, matrix = conf["labels"], np.array(conf["matrix"])
    fig = _figure("confusion")
    ax = fig.add_subplot(1, 1, 1)
    fig.subplots_adjust(left=0.15, right=0.95, top=0.9, bottom=0.15)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted (largest face)")
    ax.set_ylabel("expected")
    top = matrix.max() or 1
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > top / 2 else "black", fontsize=9)
    acc = report.get("accuracy")
    ax.set_title(f"confusion matrix: accuracy {100 * acc:.1f} % of {conf['frames']} labelled "
                 "answered frames" if acc is not None else "confusion matrix", fontsize=10)
    return _save(fig, path)


def write_plots(out: Path, report: dict[str, Any], answers: list[Answer],
                rows: list[tuple[int, int, int]]) -> dict[str, Path]:
    """Writes the PNGs into ``out``; {kind: path} of those written."""
    made = {"timeline": timeline(answers, rows, out / "timeline.png"),
            "latency": latency(answers, rows, out / "latency.png"),
            "confusion": confusion(report, out / "confusion.png")}
    return {k: v for k, v in made.items() if v is not None}
