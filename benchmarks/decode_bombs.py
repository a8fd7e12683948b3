"""Decompression bombs against the image decoding of a fer_ros revision: time and peak RSS.

Each bomb of test/image_bombs.py is decoded in a fresh child process (``import fer_ros``
first, so its OpenCV limits apply, then ``decode_compressed``, or ``decode_image_file`` where
the revision has it) and the child reports wall time, peak RSS (``ru_maxrss``) and the result.
Children run under an address-space cap (``--mem-cap-gb``, default 12) so a bomb cannot take
the machine; a child that hits it reports the MemoryError / failed allocation.

Usage: .venv/bin/python benchmarks/decode_bombs.py [--ref GIT_REV] [--json] [--mem-cap-gb N]
  --ref REV   measure fer_ros as of that git revision (extracted with `git archive`), e.g. the
              commit before the header checks, to compare before / after in one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "test"))

from image_bombs import bombs  # noqa: E402

CHILD = r"""
import json, resource, sys, time
cap = int(sys.argv[1]) << 30
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
data = sys.stdin.buffer.read()
import fer_ros
from fer_ros.core import image_codec
try:  # as the node and fer-detect do; older revisions captured in the core itself
    from fer_ros.node.process import native_log
    native_log.install()
except ImportError:
    pass
decode = getattr(image_codec, "decode_image_file", image_codec.decode_compressed)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
try:
    out = decode(data)
    result = f"decoded {out.shape[1]}x{out.shape[0]}"
except BaseException as exc:
    result = f"{type(exc).__name__}: {str(exc)[:120]}"
ms = (time.perf_counter() - t0) * 1000
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"ms": ms, "peak_rss_mb": peak / 1024, "growth_mb": (peak - base) / 1024,
                  "result": result}))
"""


def measure(source: Path, name: str, data: bytes, cap_gb: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(cap_gb)], input=data,
                          capture_output=True, cwd=str(source), timeout=600)
    lines = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("{")]
    row = json.loads(lines[-1]) if lines else {"ms": None, "peak_rss_mb": None, "growth_mb": None,
                                               "result": f"child died (rc {proc.returncode})"}
    row.update(bomb=name, bytes=len(data),
               native_stderr_lines=len([ln for ln in proc.stderr.decode().splitlines() if ln]))
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", help="git revision to measure instead of the working tree")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--mem-cap-gb", type=int, default=12)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = REPO_ROOT
        if args.ref:
            source = Path(tmp)
            archive = subprocess.run(["git", "archive", args.ref, "fer_ros"], cwd=REPO_ROOT,
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        rows = [measure(source, name, data, args.mem_cap_gb) for name, data in bombs().items()]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"fer_ros {args.ref or 'working tree'}: one child process per bomb")
    print(f"{'bomb':28s} {'bytes':>7s} {'ms':>9s} {'peak MB':>8s} {'+MB':>8s} stderr  result")
    for r in rows:
        ms = "-" if r["ms"] is None else f"{r['ms']:.1f}"
        peak = "-" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}"
        grow = "-" if r["growth_mb"] is None else f"{r['growth_mb']:.0f}"
        print(f"{r['bomb']:28s} {r['bytes']:7d} {ms:>9s} {peak:>8s} {grow:>8s} "
              f"{r['native_stderr_lines']:6d}  {r['result'][:90]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
