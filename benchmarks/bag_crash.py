"""How much of a recording survives SIGKILL: ``fer-bag record`` killed mid-recording.

    python benchmarks/bag_crash.py [--seconds 8] [--width 640 --height 480 --hz 30]
                                   [--storage mcap sqlite3] [--no-evaluate] [--keep DIR]

For each storage: a camera process publishes frames of ../shared/samples/fer_woman2.mp4
(letterboxed, bgr8, reliable) and logs every publish; ``fer-bag record`` records them and is
SIGKILLed after ``--seconds``. Prints, per storage: whether ``fer-bag info`` exits 0, the
messages it counts, how many of those published more than 1 s before the kill (from the
recorder's first message on) the cut bag holds, whether ``fer-bag evaluate`` runs on it, and
whether ``fer-bag reindex``'s output opens with the ``mcap`` library's seeking reader and
with rosbags. Exit code 1 if any storage keeps under 95 %.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))

from soak import REPO_ROOT, ros_environment  # noqa: E402

from bag_crash import bag_indexes, fer_bag, record_and_kill, survival  # noqa: E402

VIDEO = REPO_ROOT.parent / "shared" / "samples" / "fer_woman2.mp4"


def _count(stdout: str) -> int:
    return int(next(x for x in stdout.splitlines() if x.startswith("messages: ")).split()[1])


def _opens_indexed(bag: Path, count: int) -> str:
    from mcap.reader import SeekingReader, make_reader
    from rosbags.rosbag2 import Reader

    results = []
    for file in sorted(bag.glob("*.mcap")):
        with file.open("rb") as f:
            reader = make_reader(f)
            n = sum(1 for _ in reader.iter_messages())
            results.append(f"mcap {type(reader).__name__} {n}"
                           + ("" if isinstance(reader, SeekingReader) and n == count else " BAD"))
    with Reader(bag) as reader:
        n = sum(1 for _ in reader.messages())
        results.append(f"rosbags {n}" + ("" if n == count == reader.message_count else " BAD"))
    return ", ".join(results)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--hz", type=float, default=30.0)
    ap.add_argument("--storage", nargs="+", default=["mcap", "sqlite3"])
    ap.add_argument("--no-evaluate", action="store_true", help="skip fer-bag evaluate")
    ap.add_argument("--keep", type=Path, help="leave the cut bags in this folder")
    args = ap.parse_args()
    ros_environment()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bag-crash-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"load {open('/proc/loadavg').read().split()[:3]}  {args.width}x{args.height} at "
          f"{args.hz:g} Hz, SIGKILL after {args.seconds:g} s")
    worst = 1.0
    try:
        for storage in args.storage:
            cut = record_and_kill(folder, storage, args.seconds, env, args.width, args.height,
                                  args.hz, str(VIDEO) if VIDEO.is_file() else "")
            size = sum(p.stat().st_size for p in cut.bag.iterdir()) / 1e6
            info = fer_bag("info", str(cut.bag), env=env)
            count = _count(info.stdout) if info.returncode == 0 else -1
            kept, wanted = survival(cut, bag_indexes(cut.bag)) if count >= 0 else (0, 1)
            worst = min(worst, kept / max(wanted, 1))
            notes = [x.split("note: ", 1)[1] for x in info.stderr.splitlines() if "note:" in x]
            print(f"{storage}: {size:.0f} MB on disk; fer-bag info exit {info.returncode}, "
                  f"{count} messages; of the {wanted} published > 1 s before the kill it holds "
                  f"{kept} ({100 * kept / max(wanted, 1):.1f} %)")
            for note in notes:
                print(f"  note: {note}")
            if not args.no_evaluate:
                t0 = time.monotonic()
                ev = fer_bag("evaluate", str(cut.bag), "--out", str(folder / f"eval-{storage}"),
                             "--json", "-q", env=env, timeout=600)
                print(f"  fer-bag evaluate: exit {ev.returncode} in {time.monotonic() - t0:.0f} s"
                      + ("" if ev.returncode == 0 else f": {ev.stderr.strip()[-300:]}"))
            rx = fer_bag("reindex", str(cut.bag), env=env)
            print(f"  fer-bag reindex: exit {rx.returncode}; "
                  + (_opens_indexed(cut.bag, count) if rx.returncode == 0 else rx.stderr.strip()))
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0 if worst >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
