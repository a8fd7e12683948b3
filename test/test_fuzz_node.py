"""The fuzz benchmark, short: 300 messages (every decompression bomb among them, valid frames
every 30th) over real DDS against two node processes (raw and compressed transport), in well
under a minute. 0 crashes, every valid frame answered with the right label, memory bounded
loosely, native decoder lines and type support's per-message CDR complaints throttled. The
full run is ``benchmarks/fuzz_node.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")
pytest.importorskip("fer_msgs.msg", reason="fer_msgs is not built (run `make setup`)")

from conftest import REPO_ROOT, SHARED_DIR, child_env  # noqa: E402
from image_bombs import bombs  # noqa: E402

pytestmark = pytest.mark.skipif(not (SHARED_DIR / "samples" / "fer_justin.jpg").is_file(),
                                reason="../shared/samples is absent")


def test_short_fuzz_run_over_dds():
    run = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "fuzz_node.py"), "--messages", "300",
         "--valid-every", "30", "--warmup", "3", "--json", "--seed", "3"],
        env=child_env(), cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(run.stdout.strip().splitlines()[-1])
    total, phases = doc["total"], {p["transport"]: p for p in doc["phases"]}
    assert total["crashes"] == 0, doc
    for p in phases.values():
        assert p["alive"] and p["exit_code"] == 0 and p["tracebacks"] == 0, p
        assert p["node_counters"]["errors"] == "0", p
        assert p["valid_sent"] >= 4 and p["valid_right"] == p["valid_sent"], p
        assert p["reference_label"] == ["happy"], p
        assert p["peak_rss_growth_mb"] < 150, p  # the full run's target is < +100 MB
        assert p["native_raw_lines"] == 0, p["native_raw_sample"]
        assert p["native_throttled_lines"] <= 4, p
        assert int(p["node_counters"]["frames_bad"]) >= 0.1 * p["bad_sent"], p
    raw = phases["raw"]  # type support prints one line per malformed CDR message: throttled
    assert raw["cdr_sent"] >= 10, raw["kinds"]
    assert 1 <= raw["cdr_lines"] <= 2 + raw["fuzz_s"] / 5.0, raw
    sent_bombs = {k.removeprefix("bomb ") for k in phases["compressed"]["kinds"] if k.startswith("bomb ")}
    assert sent_bombs == set(bombs()), set(bombs()) - sent_bombs
    raw_kinds = " ".join(phases["raw"]["kinds"])
    for kind in ("cdr truncated", "cdr data length", "raw depth/float encoding", "raw absurd size",
                 "raw yuv odd size", "raw unknown encoding", "raw step 2^32-1"):
        assert kind in raw_kinds, kind
