"""SIGTERM (or SIGINT) the emotion node at random moments and count unclean exits.

    python benchmarks/sigterm_storm.py [--runs 40] [--min-s 0.3] [--max-s 4.0] [--signal TERM]

Each run starts the node as ``ros2 run fer_ros emotion_node`` starts it (the console script
under ``.venv/lib/fer_ros``, made by ``make setup``), waits a random time in [min-s, max-s]
(seeded: it lands in the imports, model loading / configure, or spinning) and sends the
signal. Prints the exit codes and, for every run that did not exit with 0 within 20 s or
printed a traceback or an ``RCLError``, the end of its stderr. Exit code 1 if any run did.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak import REPO_ROOT, ros_environment  # noqa: E402

NODE = REPO_ROOT / ".venv" / "lib" / "fer_ros" / "emotion_node"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--min-s", type=float, default=0.3)
    ap.add_argument("--max-s", type=float, default=4.0)
    ap.add_argument("--signal", default="TERM", choices=["TERM", "INT"])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not NODE.is_file():
        raise SystemExit(f"{NODE} not found: run `make setup` first")
    ros_environment()
    rng = random.Random(args.seed)
    signum = getattr(signal, f"SIG{args.signal}")
    codes: Counter[str] = Counter()
    bad: list[str] = []
    for i in range(args.runs):
        wait = rng.uniform(args.min_s, args.max_s)
        node = subprocess.Popen([str(NODE)], cwd=str(REPO_ROOT), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            node.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            node.send_signal(signum)
        try:
            _, err = node.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            node.kill()
            _, err = node.communicate()
            codes["hung (killed)"] += 1
            bad.append(f"run {i} (signal after {wait:.2f} s): no exit within 20 s\n{err[-400:]}")
            continue
        codes[str(node.returncode)] += 1
        if node.returncode != 0 or "Traceback" in err or "RCLError" in err:
            bad.append(f"run {i} (signal after {wait:.2f} s): exit {node.returncode}\n{err[-600:]}")
    print(f"SIG{args.signal} after {args.min_s}-{args.max_s} s, {args.runs} runs: exit codes "
          + ", ".join(f"{code}: {n}" for code, n in sorted(codes.items()))
          + f"; unclean runs: {len(bad)}")
    for text in bad:
        print(text)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
