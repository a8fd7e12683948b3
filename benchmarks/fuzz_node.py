"""Fuzz the emotion node over real DDS: malformed images in thousands, valid ones in between.

Starts ``python -m fer_ros.node.emotion_node`` (twice: once with ``input_transport:=raw``, once
with ``compressed``; each gets half the messages) and publishes, reliably so that every message
reaches it:

  raw         every encoding fer_ros reads with wrong data (short, step too small, step
              2^32-1, odd width for YUV), 100000x100000 and 0x0 headers, depth / float
              encodings (16UC1, 32FC1, ...), made-up encodings, and malformed CDR (a valid
              serialised Image cut short or with its data length rewritten);
  compressed  every decompression bomb of test/image_bombs.py, corrupt JPEG / PNG (truncated,
              flipped bytes, zeroed blocks, bad CRC), GIF / BMP / TIFF / WebP files, random
              bytes, compressedDepth, empty data;

and every ``--valid-every``-th message a valid frame of fer_justin.jpg (raw: cycling through
every camera encoding; compressed: JPEG or PNG), whose answer is awaited and checked against
the bgr8 frame's label. Prints, per transport and in all:

  crashes             node exits, tracebacks, frames that raised more than ImageError (errors)
  reject ms           max and p99 to refuse a bad message, as the node reports them
                      (/diagnostics reject_ms_max / reject_ms_p99; "n/a" on a node without them)
  RSS                 node peak RSS (VmHWM) growth from after warm-up to the end, and VmRSS
  native log lines    node output lines that are not the ROS logger's (raw C-library lines)
                      and fer_ros's throttled "native decoder message" lines, per 1,000 bad;
                      the "sequence size exceeds remaining buffer" lines (printed by the
                      generated rosidl_typesupport_fastrtps deserialiser with fprintf, one per
                      malformed CDR message; the node throttles them, see
                      fer_ros/node/process/stderr_throttle.py) are counted apart, with the malformed
                      CDR messages sent
  valid frames        answered with the right label / sent

Usage: .venv/bin/python benchmarks/fuzz_node.py [--messages 10000] [--valid-every 50]
       [--transport both|raw|compressed] [--ref GIT_REV] [--no-bombs] [--json] [--seed N]
       .venv/bin/python benchmarks/fuzz_node.py --in-process [--messages N]
  --ref REV  run the node of that git revision (extracted with `git archive`), for before/after
             (valid raw frames are then bgr8 only: an older node may not read the others).
Targets (issue 14): 0 crashes, every bad message refused in < 50 ms, peak RSS < +100 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "test"))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from soak import status_mb  # noqa: E402
SHARED_DIR = Path(os.environ.get("FER_SHARED_DIR", REPO_ROOT.parent / "shared"))
FACE = SHARED_DIR / "samples" / "fer_justin.jpg"
U32 = 2**32 - 1
ROS_LINE = re.compile(r"^\[(DEBUG|INFO|WARN|ERROR|FATAL)\] \[\d")


# ----- the messages ---------------------------------------------------------------------------
def bad_raw(rng: random.Random, bgr) -> Iterator[tuple[str, Any]]:
    """(kind, Image or serialised bytes) forever: every encoding with wrong data, etc."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from fer_ros.core.image_codec import ENCODINGS
    from fer_ros.node.conversions import bgr_to_image

    encodings = sorted(ENCODINGS)
    small = bgr[::4, ::4].copy()  # 160x120
    valid = serialize_message(bgr_to_image(small, Header(frame_id="fuzz")))
    while True:
        enc = rng.choice(encodings)
        layout = ENCODINGS[enc]
        w, h = rng.choice([(160, 120), (640, 480), (2, 2), (1280, 720)])
        row = w * layout.channels * layout.depth
        kind = rng.randrange(9)
        msg = Image(encoding=enc, width=w, height=h, step=row, is_bigendian=rng.choice([0, 1, 7]))
        need = row * h * (3 if layout.planar == "444" else 1.5 if layout.planar else 1)
        if kind == 0:  # data short by a random amount
            msg.data = rng.randbytes(rng.randrange(int(min(need, 300_000))))
            yield f"raw {enc} short data", msg
        elif kind == 1:  # step smaller than a row
            msg.step = max(0, row - rng.randrange(1, row + 1))
            msg.data = rng.randbytes(min(int(need), 200_000))
            yield f"raw {enc} step too small", msg
        elif kind == 2:  # step 2^32-1
            msg.step = U32
            msg.data = rng.randbytes(1000)
            yield "raw step 2^32-1", msg
        elif kind == 3:  # absurd headers
            msg.width, msg.height = rng.choice([(100_000, 100_000), (U32, U32), (0, 0), (0, 480),
                                                (8193, 2), (7681, 4321)])
            msg.step = msg.width * layout.channels * layout.depth % (U32 + 1)
            msg.data = rng.randbytes(rng.randrange(5000))
            yield "raw absurd size", msg
        elif kind == 4:  # odd width for the YUV encodings
            msg.encoding = rng.choice(["yuv422_yuy2", "uyvy", "nv12", "nv21", "nv24"])
            msg.width, msg.height = 161, 121
            msg.step = 161 * 2
            msg.data = rng.randbytes(161 * 2 * 121 * 3)
            yield "raw yuv odd size", msg
        elif kind == 5:  # depth / float / data encodings
            msg.encoding = rng.choice(["16UC1", "32FC1", "8UC3", "64FC4", "16SC1", "32SC2", "8UC1"])
            msg.width, msg.height, msg.step = 64, 48, 64 * 4
            msg.data = rng.randbytes(64 * 4 * 48)
            yield "raw depth/float encoding", msg
        elif kind == 6:  # made-up encodings
            msg.encoding = rng.choice(["", "BGR8", "yuv420", "bayer_rggb32", "jpeg", "mono8 ",
                                       rng.randbytes(6).hex()])
            msg.data = rng.randbytes(row * 2)
            yield "raw unknown encoding", msg
        elif kind == 7:  # malformed CDR: cut short
            yield "cdr truncated", valid[:rng.randrange(4, len(valid) - 1)]
        else:  # malformed CDR: the data length field says more than there is
            data = bytearray(valid)
            data[-len(small.tobytes()) - 4:-len(small.tobytes())] = rng.randrange(
                len(valid), U32).to_bytes(4, "little")
            yield "cdr data length", bytes(data)


def bad_compressed(rng: random.Random, bgr, with_bombs: bool = True) -> Iterator[tuple[str, Any]]:
    """(kind, CompressedImage) forever: every bomb, corrupt JPEG/PNG, other formats, noise."""
    import cv2
    from sensor_msgs.msg import CompressedImage

    from image_bombs import bombs

    bomb_list = list(bombs().items())
    jpeg = cv2.imencode(".jpg", bgr)[1].tobytes()
    progressive = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    png = cv2.imencode(".png", bgr[::2, ::2])[1].tobytes()
    others = {ext: cv2.imencode(ext, bgr[::4, ::4])[1].tobytes()
              for ext in (".bmp", ".tiff", ".webp", ".ppm")}
    if with_bombs:  # every bomb once first, then at random among the rest
        for name, data in bomb_list:
            msg = CompressedImage(format="jpeg")
            msg.data = data
            yield f"bomb {name}", msg
    gif = b"GIF89a\x10\x00\x10\x00\x00\x00\x00,\x00\x00\x00\x00\x10\x00\x10\x00\x00\x02\x02L\x01\x00;"
    while True:
        kind = rng.randrange(8) if with_bombs else rng.randrange(1, 8)
        fmt = rng.choice(["jpeg", "png", "bgr8; jpeg compressed bgr8", "rgb8; png compressed bgr8", ""])
        if kind == 0:
            name, data = rng.choice(bomb_list)
            label = f"bomb {name}"
        elif kind == 1:
            base = rng.choice([jpeg, progressive])
            data, label = base[:rng.randrange(2, len(base))], "jpeg truncated"
        elif kind == 2:
            data = bytearray(rng.choice([jpeg, progressive]))
            for _ in range(rng.randrange(1, 40)):
                data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
            data, label = bytes(data), "jpeg flipped bytes"
        elif kind == 3:
            data = bytearray(jpeg)
            at = rng.randrange(len(data))
            data[at:at + 4096] = bytes(len(data[at:at + 4096]))
            data, label = bytes(data), "jpeg zeroed block"
        elif kind == 4:
            data = bytearray(png)
            if rng.random() < 0.5:
                data = data[:rng.randrange(8, len(data))]
                label = "png truncated"
            else:
                at = rng.randrange(8, len(data))
                data[at] ^= 0xFF
                label = "png flipped byte"
            data = bytes(data)
        elif kind == 5:
            ext = rng.choice(list(others) + [".gif"])
            data, label = others.get(ext, gif), f"other format {ext}"
        elif kind == 6:
            data = rng.randbytes(rng.randrange(0, 20000))
            if rng.random() < 0.3:
                data = rng.choice([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"]) + data
            label = "random bytes"
        else:
            data = b"\x00" * 12 + cv2.imencode(".png", (bgr[::8, ::8, 0].astype("uint16")))[1].tobytes()
            fmt, label = "16UC1; compressedDepth png", "compressedDepth"
        msg = CompressedImage(format=fmt)
        msg.data = data
        yield label, msg


# ----- one phase: one node, one transport -----------------------------------------------------
# corrupt files that often still decode (libjpeg fills in): the worker then runs the pipeline
# on them, so the next message waits a little longer to reach the worker (latest frame wins)
DECODABLE = {"jpeg flipped bytes", "jpeg zeroed block", "png flipped byte"}
CDR_LINE = "sequence size exceeds remaining buffer"


class Phase:
    """One node process on one transport, and the fuzzer's own ROS node talking to it."""

    def __init__(self, transport: str, node_env: dict[str, str], log_dir: Path,
                 node_cwd: Path, valid_encodings: list[str] | None) -> None:
        import cv2
        import rclpy
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CompressedImage, Image

        from fer_ros.core.image_codec import ENCODINGS
        from fer_ros.core.frame_reader import letterbox

        self.transport, self.compressed = transport, transport == "compressed"
        self.topic = "/image_raw/compressed" if self.compressed else "/image_raw"
        self.name = f"fuzz_{transport}"
        self.out_path, self.err_path = log_dir / f"{self.name}.out", log_dir / f"{self.name}.err"
        self.node = self._start_node(node_env, node_cwd)
        self.me = rclpy.create_node(f"fer_fuzzer_{transport}")
        qos = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.RELIABLE)
        self.pub = self.me.create_publisher(CompressedImage if self.compressed else Image,
                                            self.topic, qos)
        self.answers: dict[int, list[str]] = {}
        self.diag: dict[str, str] = {}
        self._subscribe()
        self.bgr = letterbox(cv2.imread(str(FACE)), 640, 480)
        self.encodings = valid_encodings or sorted(ENCODINGS)

    def _start_node(self, node_env: dict[str, str], node_cwd: Path) -> subprocess.Popen:
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            return subprocess.Popen(
                [sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args",
                 "-r", f"__node:={self.name}", "-p", f"input_transport:={self.transport}",
                 "-p", "tracking:=false", "-p", "diagnostics_period_s:=0.5",
                 "-p", f"qos_overrides.{self.topic}.subscription.reliability:=reliable",
                 "-p", f"qos_overrides.{self.topic}.subscription.depth:=100"],
                cwd=str(node_cwd), env=node_env, stdout=out, stderr=err)

    def _subscribe(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from fer_msgs.msg import EmotionArray

        def on_diag(msg: DiagnosticArray) -> None:
            for status in msg.status:
                if status.name == f"fer_ros: /{self.name}":
                    self.diag.clear()
                    self.diag.update({kv.key: kv.value for kv in status.values})

        self.me.create_subscription(
            EmotionArray, "emotions",
            lambda m: self.answers.setdefault(m.header.stamp.sec, [e.label for e in m.emotions]),
            QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
        self.me.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)

    def spin(self, seconds: float, until=lambda: False) -> bool:
        import rclpy

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if until():
                return True
            rclpy.spin_once(self.me, timeout_sec=min(0.01, max(0.0, end - time.monotonic())))
        return until()

    def valid(self, k: int) -> tuple[Any, str]:
        """The k-th valid frame and its form (JPEG/PNG, or the raw encoding)."""
        import cv2
        from sensor_msgs.msg import CompressedImage
        from std_msgs.msg import Header

        from fer_ros.node.conversions import bgr_to_image

        if self.compressed:
            ext = ".jpg" if k % 2 == 0 else ".png"
            msg = CompressedImage(format="jpeg" if ext == ".jpg" else "png")
            msg.data = cv2.imencode(ext, self.bgr)[1].tobytes()
            return msg, ext
        enc = self.encodings[k % len(self.encodings)]
        return bgr_to_image(self.bgr, Header(frame_id="fuzz"), enc), enc

    def ask(self, msg: Any, sec: int, timeout: float = 60.0) -> list[str] | None:
        """Publish ``msg`` stamped ``sec`` until it is answered; the labels of the answer."""
        msg.header.stamp.sec = sec
        end = time.monotonic() + timeout
        while sec not in self.answers and time.monotonic() < end and self.node.poll() is None:
            self.pub.publish(msg)
            self.spin(2.0, lambda: sec in self.answers)
        return self.answers.get(sec)

    def start(self, warmup: int) -> list[str] | None:
        """Wait for the node, then the reference answer and the warm-up frames."""
        from std_msgs.msg import Header

        from fer_ros.node.conversions import bgr_to_image

        node = self.node
        if not self.spin(180.0, lambda: self.pub.get_subscription_count() > 0 and bool(self.diag)
                         or node.poll() is not None) or node.poll() is not None:
            raise SystemExit(f"fuzz: the {self.transport} node did not start: "
                             f"{self.err_path.read_text()[-1500:]}")
        first = self.valid(0)[0] if self.compressed else bgr_to_image(self.bgr, Header())
        reference = self.ask(first, 1, 120.0)
        for k in range(min(len(self.encodings), warmup) if not self.compressed else 2):
            self.ask(self.valid(k)[0], 2 + k)
        self.spin(1.5)
        return reference

    def fuzz(self, messages: int, valid_every: int, seed: int, with_bombs: bool,
             reference: list[str] | None) -> dict[str, Any]:
        """Send the bad messages, a valid frame every ``valid_every``-th, checking its answer."""
        rng = random.Random(seed)
        bad = bad_compressed(rng, self.bgr, with_bombs) if self.compressed else bad_raw(rng, self.bgr)
        kinds: dict[str, int] = {}
        sent_bad = valid_sent = valid_ok = 0
        wrong: list[str] = []
        t0 = time.monotonic()
        for i in range(messages):
            if self.node.poll() is not None:
                break
            if valid_every and i % valid_every == valid_every - 1:
                msg, form = self.valid(valid_sent)
                valid_sent += 1
                got = self.ask(msg, 1000 + i)
                if got == reference:
                    valid_ok += 1
                else:
                    wrong.append(f"{form}: {got}")
                continue
            kind, msg = next(bad)
            kinds[kind] = kinds.get(kind, 0) + 1
            self.pub.publish(msg)
            sent_bad += 1
            self.spin(0.08 if kind in DECODABLE else 0.01)  # 0.01: the GIL switch interval is 5 ms
        return dict(messages=sent_bad + valid_sent, bad_sent=sent_bad,
                    fuzz_s=round(time.monotonic() - t0, 1), kinds=dict(sorted(kinds.items())),
                    valid_sent=valid_sent, valid_right=valid_ok, valid_wrong=wrong[:5],
                    reference_label=reference)

    def settled(self) -> bool:
        """Has the node accounted for every message it received?"""
        if not self.diag:
            return False
        got = float(self.diag["frames_received"])
        done = sum(float(self.diag.get(k, 0)) for k in ("frames_processed", "frames_bad",
                                                        "frames_skipped", "errors"))
        return got == done

    def counters(self, hwm0: float, rss0: float) -> dict[str, Any]:
        """The node's own counters and its memory, after the fuzzing."""
        diag, pid, alive = self.diag, self.node.pid, self.node.poll() is None
        return dict(
            alive=alive,
            node_counters={k: diag.get(k) for k in ("frames_received", "frames_processed",
                                                    "frames_bad", "frames_skipped", "errors")},
            reject_ms_max=float(diag["reject_ms_max"]) if "reject_ms_max" in diag else None,
            reject_ms_p99=float(diag["reject_ms_p99"]) if "reject_ms_p99" in diag else None,
            rss_after_warmup_mb=round(rss0, 1),
            peak_rss_growth_mb=round(status_mb(pid, "VmHWM") - hwm0, 1) if alive else None,
            rss_end_mb=round(status_mb(pid, "VmRSS"), 1) if alive else None)

    def stop(self) -> None:
        node = self.node
        if node.poll() is None:
            node.send_signal(2)
            try:
                node.wait(timeout=20)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
        self.me.destroy_node()

    def log_counts(self, result: dict[str, Any]) -> dict[str, Any]:
        """What the node printed: tracebacks, raw and throttled native lines, CDR complaints."""
        lines = (self.out_path.read_text(errors="replace")
                 + self.err_path.read_text(errors="replace")).splitlines()
        native = [ln for ln in lines if ln.strip() and not ROS_LINE.match(ln) and CDR_LINE not in ln
                  and not ln.startswith("fer_ros: ")]  # fer_ros's own summary of held-back lines
        return dict(
            exit_code=self.node.returncode, tracebacks=sum("Traceback" in ln for ln in lines),
            log_lines=len(lines), native_raw_lines=len(native), native_raw_sample=native[:3],
            native_throttled_lines=sum("native decoder message" in ln for ln in lines),
            cdr_lines=sum(CDR_LINE in ln for ln in lines),
            cdr_sent=sum(n for k, n in result.get("kinds", {}).items() if k.startswith("cdr ")),
            bad_image_warnings=sum("skipping a bad image" in ln for ln in lines))


def run_phase(transport: str, messages: int, valid_every: int, seed: int,
              node_env: dict[str, str], log_dir: Path, with_bombs: bool = True,
              node_cwd: Path = REPO_ROOT, valid_encodings: list[str] | None = None,
              warmup: int = 25) -> dict[str, Any]:
    phase = Phase(transport, node_env, log_dir, node_cwd, valid_encodings)
    result: dict[str, Any] = {"transport": transport}
    try:
        reference = phase.start(warmup)
        pid = phase.node.pid
        hwm0, rss0 = status_mb(pid, "VmHWM"), status_mb(pid, "VmRSS")
        result.update(phase.fuzz(messages, valid_every, seed, with_bombs, reference))
        phase.spin(30.0, phase.settled)
        phase.spin(1.0)
        result.update(phase.counters(hwm0, rss0))
    finally:
        phase.stop()
    result.update(phase.log_counts(result))
    result["crashes"] = int(not result.get("alive", False)) + result["tracebacks"] + int(
        float((result.get("node_counters") or {}).get("errors") or 0) > 0)
    return result


def in_process(messages: int, seed: int) -> dict[str, Any]:
    """The same bad messages through the node's conversions in this process, no DDS: thread
    CPU time and wall time to refuse each, per kind (wall minus CPU is the machine's load)."""
    import cv2
    from sensor_msgs.msg import Image

    from fer_ros.core.errors import ImageError
    from fer_ros.node import conversions
    from fer_ros.core.frame_reader import letterbox

    bgr = letterbox(cv2.imread(str(FACE)), 640, 480)
    kinds: dict[str, dict[str, float]] = {}
    for gen in (bad_raw(random.Random(seed), bgr), bad_compressed(random.Random(seed), bgr)):
        for _ in range(messages // 2):
            kind, msg = next(gen)
            if isinstance(msg, bytes):
                continue  # malformed CDR never reaches the node's code
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                (conversions.image_to_bgr if isinstance(msg, Image) else conversions.compressed_to_bgr)(msg)
                continue  # decoded (a corrupt JPEG libjpeg could fill in): not a refusal
            except ImageError:
                pass
            cpu, wall = (time.thread_time() - cpu) * 1e3, (time.perf_counter() - wall) * 1e3
            key = re.sub(r"^raw \S+ (short data|step too small)$", r"raw (every encoding) \1", kind)
            k = kinds.setdefault(key, {"refused": 0, "cpu_ms_max": 0.0, "wall_ms_max": 0.0})
            k["refused"] += 1
            k["cpu_ms_max"] = round(max(k["cpu_ms_max"], cpu), 3)
            k["wall_ms_max"] = round(max(k["wall_ms_max"], wall), 3)
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]["cpu_ms_max"]))


def ros_environment() -> None:
    profile = REPO_ROOT / "config" / "fastdds_large_images.xml"
    os.environ.update(
        ROS_DOMAIN_ID=os.environ.get("FER_FUZZ_ROS_DOMAIN_ID",
                                     str(random.SystemRandom().randint(1, 101))),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        FASTRTPS_DEFAULT_PROFILES_FILE=str(profile), FASTDDS_DEFAULT_PROFILES_FILE=str(profile),
        PYTHONUNBUFFERED="1")
    os.environ.pop("ROS_LOCALHOST_ONLY", None)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10000, help="in all, over the transports")
    ap.add_argument("--valid-every", type=int, default=50)
    ap.add_argument("--transport", choices=["both", "raw", "compressed"], default="both")
    ap.add_argument("--ref", help="git revision of the node to run (default: the working tree)")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-bombs", action="store_true",
                    help="leave the decompression bombs out (for --ref runs of a node without "
                         "header checks: each bomb costs it seconds and gigabytes)")
    ap.add_argument("--warmup", type=int, default=25,
                    help="valid raw frames (one per encoding) before the RSS baseline")
    ap.add_argument("--in-process", action="store_true",
                    help="no node, no DDS: time the node's conversions on the same bad messages "
                         "in this process (thread CPU and wall ms per kind)")
    return ap.parse_args(argv)


def print_in_process(messages: int, seed: int) -> None:
    kinds = in_process(messages, seed)
    for kind, k in kinds.items():
        print(f"{kind:36s} refused {k['refused']:5d}  max CPU {k['cpu_ms_max']:7.3f} ms  "
              f"max wall {k['wall_ms_max']:7.3f} ms")
    print(json.dumps({"kinds": kinds, "load_average": os.getloadavg()[0]}))


def node_source(ref: str | None, tmp: Path) -> tuple[dict[str, str], Path, list[str] | None]:
    """(environment, working directory, valid raw encodings) of the node to fuzz: the working
    tree, or fer_ros as of git revision ``ref`` extracted under ``tmp``."""
    if not ref:
        return dict(os.environ), REPO_ROOT, None
    src = tmp / "src"  # `python -m` puts the cwd first on sys.path: run the node from there
    src.mkdir()
    archive = subprocess.run(["git", "archive", ref, "fer_ros", "config"],
                             cwd=REPO_ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONDONTWRITEBYTECODE="1",
               FER_MODEL_DIR=str(REPO_ROOT / "models"))
    return env, src, ["bgr8"]  # an older node may not read the other encodings


def run_phases(args: argparse.Namespace) -> list[dict[str, Any]]:
    import rclpy

    transports = ["raw", "compressed"] if args.transport == "both" else [args.transport]
    with tempfile.TemporaryDirectory() as tmp:
        node_env, node_cwd, valid_encodings = node_source(args.ref, Path(tmp))
        rclpy.init(args=[])
        try:
            return [run_phase(t, args.messages // len(transports), args.valid_every, args.seed,
                              node_env, Path(tmp), not args.no_bombs, node_cwd, valid_encodings,
                              args.warmup)
                    for t in transports]
        finally:
            rclpy.shutdown()


def totals(phases: list[dict[str, Any]], ref: str | None) -> dict[str, Any]:
    def worst(key: str) -> float | None:
        return max((p[key] for p in phases if p[key] is not None), default=None)

    def added(key: str) -> int:
        return sum(p[key] for p in phases)

    return {
        **{k: added(k) for k in ("messages", "bad_sent", "crashes", "valid_sent", "valid_right")},
        "reject_ms_max": worst("reject_ms_max"), "reject_ms_p99": worst("reject_ms_p99"),
        "peak_rss_growth_mb": max((p["peak_rss_growth_mb"] or 0.0) for p in phases),
        **{k: added(k) for k in ("native_raw_lines", "native_throttled_lines", "cdr_lines",
                                 "cdr_sent")},
        "ref": ref or "working tree", "load_average": os.getloadavg()[0],
    }


def print_report(phases: list[dict[str, Any]], t: dict[str, Any]) -> None:
    for p in phases:
        print(f"[{p['transport']}] {p['messages']} messages ({p['bad_sent']} bad) in {p['fuzz_s']} s; "
              f"node alive {p.get('alive')}, exit {p['exit_code']}, tracebacks {p['tracebacks']}, "
              f"counters {p.get('node_counters')}")
        print(f"[{p['transport']}] reject ms max {p['reject_ms_max']} p99 {p['reject_ms_p99']}; "
              f"peak RSS +{p['peak_rss_growth_mb']} MB (after warm-up {p['rss_after_warmup_mb']} MB, "
              f"end {p['rss_end_mb']} MB); valid {p['valid_right']}/{p['valid_sent']} right "
              f"({p['reference_label']}) {p['valid_wrong']}")
        print(f"[{p['transport']}] log lines {p['log_lines']}: native raw {p['native_raw_lines']} "
              f"{p['native_raw_sample']}, native throttled {p['native_throttled_lines']}, "
              f"'{CDR_LINE}' {p['cdr_lines']} for {p['cdr_sent']} malformed CDR messages, "
              f"bad-image warnings {p['bad_image_warnings']}")
        print(f"[{p['transport']}] kinds {p['kinds']}")
    per_k = 1000 * t["native_raw_lines"] / max(1, t["bad_sent"])
    print(f"TOTAL {t['messages']} messages, {t['bad_sent']} bad: crashes {t['crashes']}, "
          f"reject ms max {t['reject_ms_max']} p99 {t['reject_ms_p99']}, node peak RSS "
          f"+{t['peak_rss_growth_mb']} MB, native raw lines {t['native_raw_lines']} "
          f"({per_k:.1f} per 1,000 bad), throttled native lines {t['native_throttled_lines']}, "
          f"malformed-CDR lines {t['cdr_lines']} for {t['cdr_sent']} sent, "
          f"valid frames right {t['valid_right']}/{t['valid_sent']} "
          f"(load average {t['load_average']:.2f}, {t['ref']})")
    print(json.dumps(t))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not FACE.is_file():
        sys.exit(f"fuzz: {FACE} is absent (../shared/samples)")
    if args.in_process:
        print_in_process(args.messages, args.seed)
        return 0
    ros_environment()
    phases = run_phases(args)
    total = totals(phases, args.ref)
    if args.json:
        print(json.dumps({"total": total, "phases": phases}))
    else:
        print_report(phases, total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
