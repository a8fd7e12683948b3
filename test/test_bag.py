"""fer-bag: video -> bag -> read back, play, record, evaluate and errors (real DDS, separate
processes, random domain from conftest)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")
pytest.importorskip("rosbags", reason="rosbags is not installed (run `make setup`)")
pytest.importorskip("fer_msgs.msg", reason="fer_msgs is not built (run `make setup`)")

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from rosbags.rosbag2 import Reader, Writer  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from conftest import REPO_ROOT, SHARED_DIR, child_env, stop_process  # noqa: E402
from fer_msgs.msg import EmotionArray  # noqa: E402
from fer_ros.cli import bag as cli  # noqa: E402
from fer_ros.bag.typestore import typestore  # noqa: E402

FRAMES, VIDEO_FPS = 16, 10.0
WOMAN = SHARED_DIR / "samples" / "fer_woman2.mp4"

# One deterministic EmotionArray per index, shared by the publisher child and the checks.
EMOTIONS_CODE = """
from fer_msgs.msg import Emotion, EmotionArray
from sensor_msgs.msg import RegionOfInterest

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def emotion_array(i):
    msg = EmotionArray(labels=LABELS)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + i, 125 * i
    msg.header.frame_id = "cam%d" % i
    for k in range(i % 3):
        probs = [0.0] * 7
        probs[(i + k) % 7] = 0.75
        probs[(i + k + 1) % 7] = 0.25
        msg.emotions.append(Emotion(
            id=10 * i + k, roi=RegionOfInterest(x_offset=i, y_offset=k, width=20 + i, height=30),
            detection_score=0.5 + 0.125 * k, label=LABELS[(i + k) % 7], confidence=0.75,
            probabilities=probs))
    return msg
"""
_ns: dict = {}
exec(EMOTIONS_CODE, _ns)
emotion_array = _ns["emotion_array"]


def fer_bag(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m fer_ros.cli.bag ARGS`` in a child process."""
    return subprocess.run([sys.executable, "-m", "fer_ros.cli.bag", *args], env=child_env(),
                          cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=timeout)


def start_fer_bag(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "fer_ros.cli.bag", *args], env=child_env(),
                            cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """A small MJPG video with distinct frames, and its frames as OpenCV decodes them."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, (64, 48))
    rng = np.random.default_rng(7)
    for i in range(FRAMES):
        frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        cv2.putText(frame, str(i), (5, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 3)
        writer.write(frame)
    writer.release()
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == FRAMES
    return path, frames


def read_bag(path: Path) -> tuple[list, list[tuple[int, bytes]]]:
    with Reader(path) as reader:
        return list(reader.connections), [(t, bytes(d)) for _, t, d in reader.messages()]


def test_rclpy_and_rosbags_serialisation_agree():
    store = typestore()
    img = Image(height=2, width=3, encoding="bgr8", step=9)
    img.data = bytes(range(18))
    img.header.frame_id, img.header.stamp.sec, img.header.stamp.nanosec = "cam", 5, 7
    for msg, name in ((img, "sensor_msgs/msg/Image"), (emotion_array(5), "fer_msgs/msg/EmotionArray")):
        raw = serialize_message(msg)
        ours = bytes(store.serialize_cdr(store.deserialize_cdr(raw, name), name))
        assert deserialize_message(ours, type(msg)) == msg
        # same layout; Fast CDR may leave alignment padding unset where rosbags writes zeros
        assert len(ours) == len(raw)
        assert all(ours[k] == 0 for k in range(len(raw)) if ours[k] != raw[k])


@pytest.mark.parametrize("storage, compressed", [("mcap", False), ("sqlite3", False),
                                                 ("mcap", True)])
def test_from_video_writes_a_standard_bag(tmp_path, video, storage, compressed, capsys):
    path, frames = video
    out = tmp_path / "bag"
    args = ["from-video", str(path), str(out), "--storage", storage, "--fps", "20",
            "--frame-id", "cam_optical", "--start-time", "1000.5", "-q"]
    assert cli.main(args + (["--compressed"] if compressed else [])) == 0
    assert (out / "metadata.yaml").is_file()
    assert [p.suffix for p in out.iterdir() if p.name != "metadata.yaml"] == \
        [".mcap" if storage == "mcap" else ".db3"]
    meta = (out / "metadata.yaml").read_text()
    assert f"storage_identifier: {storage}" in meta and "version: 9" in meta
    conns, messages = read_bag(out)
    msg_type = CompressedImage if compressed else Image
    assert [(c.topic, c.msgtype) for c in conns] == [
        ("/camera/image_raw/compressed" if compressed else "/camera/image_raw",
         f"sensor_msgs/msg/{msg_type.__name__}")]
    assert conns[0].digest == typestore().hash_rihs01(conns[0].msgtype)
    assert len(messages) == FRAMES
    for i, (stamp, data) in enumerate(messages):
        assert stamp == 1_000_500_000_000 + round(i * 1e9 / 20)  # evenly spaced at --fps
        msg = deserialize_message(data, msg_type)
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == stamp
        assert msg.header.frame_id == "cam_optical"
        if compressed:
            assert "jpeg" in msg.format
            jpeg = cv2.imencode(".jpg", frames[i], [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
            assert bytes(msg.data) == jpeg.tobytes()  # the frame, JPEG-encoded (default quality)
        else:
            assert (msg.encoding, msg.width, msg.height, msg.step) == ("bgr8", 64, 48, 192)
            pixels = np.frombuffer(bytes(msg.data), np.uint8).reshape(48, 64, 3)
            assert np.array_equal(pixels, frames[i])
    # default rate: the video's own; --max-frames
    out2 = tmp_path / "bag2"
    assert cli.main(["from-video", str(path), str(out2), "--storage", storage, "--max-frames", "4",
                     "-q"]) == 0
    stamps = [t for t, _ in read_bag(out2)[1]]
    assert len(stamps) == 4 and np.diff(stamps).tolist() == [round(1e9 / VIDEO_FPS)] * 3



NO_ROS = """
import sys
for name in ("rclpy", "sensor_msgs", "std_msgs", "builtin_interfaces", "fer_msgs"):
    sys.modules[name] = None  # importing any of them now fails
from fer_ros.cli import bag
from fer_ros.bag.reader import open_bag
code = bag.main(["from-video", sys.argv[1], sys.argv[2], "--max-frames", "3", "-q"])
code += bag.main(["info", sys.argv[2]])
with open_bag(sys.argv[2]) as reader:
    print(code, [t.msgtype for t in reader.topics.values()], reader.message_count)
"""


def test_bags_are_made_and_read_without_ros(tmp_path, video):
    """fer_ros.bag needs no ROS install: a laptop with pip alone makes a bag from a video."""
    path, frames = video
    out = tmp_path / "bag"
    proc = subprocess.run([sys.executable, "-c", NO_ROS, str(path), str(out)], env=child_env(),
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 ['sensor_msgs/msg/Image'] 3"
    # info: how the topic would play (camera data: best effort), and that play needs ROS
    assert ("/camera/image_raw  sensor_msgs/msg/Image  3 messages  plays best_effort/volatile  "
            "(type not installed: play skips it)") in proc.stdout, proc.stdout
    messages = read_bag(out)[1]
    assert np.array_equal(np.frombuffer(bytes(deserialize_message(messages[2][1], Image).data),
                                        np.uint8).reshape(48, 64, 3), frames[2])


def test_play_qos_adapts_the_recorded_offers_as_ros2_bag_play():
    """rosbag2's adapt_offer_to_recorded_offers, ROS-free, and the rclpy profile built from it."""
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    from fer_ros.bag.play_qos import play_policies
    from fer_ros.bag_transport.qos import play_profile

    def offer(reliability: int, durability: int) -> Qos:
        zero = QosTime(0, 0)
        return Qos(QosHistory(1), 5, QosReliability(reliability), QosDurability(durability), zero,
                   zero, QosLiveliness(1), zero, False)

    sensor, latched = offer(2, 2), offer(1, 1)
    assert play_policies([sensor, sensor]) == ("best_effort", "volatile")
    assert play_policies([latched]) == ("reliable", "transient_local")
    assert play_policies([sensor, latched]) == ("reliable", "volatile")  # offers disagree
    assert play_policies([offer(0, 0)]) == ("reliable", "volatile")  # system default
    assert play_policies([latched], "best_effort") == ("best_effort", "transient_local")
    with pytest.raises(ValueError, match="unknown reliability 'fast'"):
        play_policies([sensor], "fast")
    profile = play_profile([latched], "best_effort")
    assert (profile.reliability, profile.durability, profile.depth) == (
        ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.TRANSIENT_LOCAL, 10)


SUBSCRIBER = """
import sys, time, zlib
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

rclpy.init()
node = rclpy.create_node("bag_sink")
got = []
node.create_subscription(Image, "/camera/image_raw", got.append, qos_profile_sensor_data)
print("ready", flush=True)
deadline = time.monotonic() + float(sys.argv[2])
while len(got) < int(sys.argv[1]) and time.monotonic() < deadline:
    rclpy.spin_once(node, timeout_sec=0.05)
for m in got:
    print(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec, zlib.crc32(bytes(m.data)), flush=True)
"""


def test_play_publishes_every_message_in_order_to_another_process(tmp_path, video, python_child):
    path, _ = video
    bag = tmp_path / "bag"
    assert cli.main(["from-video", str(path), str(bag), "--fps", "20", "-q"]) == 0
    expected = [(t, zlib.crc32(bytes(deserialize_message(d, Image).data)))
                for t, d in read_bag(bag)[1]]
    sink = python_child(SUBSCRIBER, str(FRAMES), "60")
    assert sink.stdout.readline().strip() == "ready"
    played = fer_bag("play", str(bag), "--wait-for-subscribers", "60", "--rate", "2")
    assert played.returncode == 0, played.stderr
    assert f"published {FRAMES} messages" in played.stderr
    seconds = float(played.stderr.split(" messages in ")[1].split()[0])
    assert seconds >= 0.9 * (FRAMES - 1) / 20 / 2  # recorded timing at --rate 2
    out, err = stop_process(sink, timeout=60)
    got = [tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()]
    assert got == expected  # every message, in order, bytes intact


PUBLISHER = EMOTIONS_CODE + """
import zlib
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

rclpy.init()
node = rclpy.create_node("emotion_source")
pub = node.create_publisher(EmotionArray, "/emotions",
                            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
i = 0
print("publishing", flush=True)
try:
    while rclpy.ok():
        pub.publish(emotion_array(i))
        i += 1
        rclpy.spin_once(node, timeout_sec=0.05)
except KeyboardInterrupt:
    pass
"""


def test_record_live_emotion_array_topic(tmp_path, python_child):
    source = python_child(PUBLISHER)
    assert source.stdout.readline().strip() == "publishing"
    timed = start_fer_bag("record", str(tmp_path / "timed"), "/emotions", "--duration", "4")
    until_sigint = start_fer_bag("record", str(tmp_path / "sigint"), "emotions",
                                 "--storage", "sqlite3", "--discovery-timeout", "60")
    try:
        out, err = timed.communicate(timeout=90)
        assert timed.returncode == 0, err
        until_sigint.send_signal(signal.SIGINT)
        out2, err2 = until_sigint.communicate(timeout=30)
        assert until_sigint.returncode == 0, err2
    finally:
        for proc in (timed, until_sigint):
            stop_process(proc)
    assert source.poll() is None, "the publisher died"
    for name, storage in (("timed", "mcap"), ("sigint", "sqlite3")):
        conns, messages = read_bag(tmp_path / name)
        assert f"storage_identifier: {storage}" in (tmp_path / name / "metadata.yaml").read_text()
        assert [(c.topic, c.msgtype) for c in conns] == [("/emotions", "fer_msgs/msg/EmotionArray")]
        assert "fer_msgs/Emotion[] emotions" in conns[0].msgdef.data  # real schema
        assert conns[0].digest == typestore().hash_rihs01("fer_msgs/msg/EmotionArray")
        assert conns[0].ext.offered_qos_profiles[0].reliability.name == "RELIABLE"
        assert len(messages) >= 10, (err, err2)
        decoded = [deserialize_message(d, EmotionArray) for _, d in messages]
        first = decoded[0].header.stamp.sec - 1000
        assert decoded == [emotion_array(first + k) for k in range(len(decoded))]  # all fields
        assert [t for t, _ in messages] == sorted(t for t, _ in messages)


def classifier_args(tmp_path: Path) -> list[str]:
    """The shipped classifier when it resolves; else an untrained one (labels are then random,
    which the checks below allow: they test counts, faces and the report's shape)."""
    from fer_ros.core.errors import ModelError
    from fer_ros.core.model_files import resolve_model

    try:
        resolve_model("fer7")
        return []
    except ModelError:
        from fer_ros.core.checkpoint import make_checkpoint, save_checkpoint
        from fer_ros.core.network import DEFAULT_ARCH, build_network

        labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
        ckpt = make_checkpoint(build_network(DEFAULT_ARCH, 7), labels, {"mean": 0.5, "std": 0.25},
                               meta={"note": "untrained, for tests"})
        save_checkpoint(ckpt, tmp_path / "untrained.pt")
        return ["-p", f"classifier_model:={tmp_path / 'untrained.pt'}"]


def _html_parts(page: str) -> tuple[dict[str, str], dict[str, bytes], dict]:
    """(data-key -> cell text, plot name -> PNG bytes, embedded report) of a report page."""
    import base64
    import html as html_lib
    import re

    cells = {k: html_lib.unescape(v) for k, v in re.findall(r'data-key="([^"]+)">([^<]*)<', page)}
    plots = {k: base64.b64decode(v) for k, v in
             re.findall(r'data-plot="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)}
    blob = re.search(r'<script type="application/json" id="report-json">(.*?)</script>', page, re.S)
    return cells, plots, json.loads(blob.group(1).replace("<\\/", "</"))


def _check_report_page(folder: Path, report: dict) -> None:
    """report.html: self-contained, its numbers are report.json's, its plots decode to images
    of the declared size (and are the PNG files beside it)."""
    from fer_ros.evaluation.report_plots import MAX_TRACKS, figure_size

    page = (folder / "report.html").read_text()
    assert "http://" not in page and "https://" not in page and "<link" not in page
    cells, plots, embedded = _html_parts(page)
    assert embedded == report
    assert cells["frames_published"] == str(report["frames_published"])
    assert cells["frames_answered"] == str(report["frames_answered"])
    assert cells["answered_ratio"] == f"{100 * report['answered_ratio']:.1f} %"
    assert cells["fps"] == f"{report['fps']:.2f} frames/s"
    for key in ("p50", "p95", "max"):
        assert cells[f"latency_ms.{key}"] == f"{report['latency_ms'][key]:.1f} ms"
    assert cells["accuracy"] == f"{100 * report['accuracy']:.1f} %"
    with Reader(folder / "results") as reader:  # the tracks the node reported
        store = typestore()
        ids = {e.id for _, _, d in reader.messages()
               for e in store.deserialize_cdr(bytes(d), "fer_msgs/msg/EmotionArray").emotions}
    expected = {"timeline": figure_size("timeline", min(MAX_TRACKS, len(ids))),
                "latency": figure_size("latency"), "confusion": figure_size("confusion")}
    assert set(plots) == set(expected)
    for name, png in plots.items():
        image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and (image.shape[1], image.shape[0]) == expected[name], name
        assert png == (folder / f"{name}.png").read_bytes()
        assert image.std() > 5  # not a blank canvas


@pytest.mark.skipif(not WOMAN.is_file(), reason=f"{WOMAN} is absent (../shared/samples)")
def test_evaluate_compare_sample_video_ssd_vs_yunet(tmp_path):
    frames = 30
    bag = tmp_path / "woman"
    assert cli.main(["from-video", str(WOMAN), str(bag), "--max-frames", str(frames), "-q"]) == 0
    labels = tmp_path / "labels.csv"
    labels.write_text("frame,label\n" + "".join(f"{i},happy\n" for i in range(0, frames, 2)))
    configs = []
    for detector in ("ssd", "yunet"):
        path = tmp_path / f"{detector}.yaml"
        path.write_text(f'/**:\n  ros__parameters:\n    detector: "{detector}"\n')
        configs.append(str(path))
    out = tmp_path / "eval"
    run = fer_bag("evaluate", str(bag), "--json", "--lockstep", "--out", str(out),
                  "--labels", str(labels), "--compare", *configs, *classifier_args(tmp_path),
                  timeout=400)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.stdout.strip().splitlines()) == 1  # exactly one JSON object
    doc = json.loads(run.stdout)
    assert doc == json.loads((out / "compare.json").read_text())
    assert list(doc["configs"]) == ["ssd", "yunet"]
    by_frame = {}
    for name, config in doc["configs"].items():
        report = config["report"]
        assert set(report) == {"frames_published", "frames_answered", "answered_ratio", "fps",
                               "latency_ms", "faces_per_frame", "label_histogram",
                               "frames_unanswered", "node", "accuracy", "confusion"}
        assert report["frames_published"] == frames
        assert report["answered_ratio"] >= 0.9
        assert 0.9 <= report["faces_per_frame"] <= 1.1  # one woman in every frame
        # the node's counters as of its last diagnostics (1 s period) before it stopped
        assert 0 < report["node"]["frames_processed"] <= report["frames_answered"]
        assert report["node"]["frames_bad"] == 0
        lat = report["latency_ms"]
        assert 0 < lat["p50"] <= lat["p95"] <= lat["max"] < 60_000
        assert sum(report["label_histogram"].values()) == round(
            report["faces_per_frame"] * report["frames_answered"])
        conf = report["confusion"]
        assert sum(map(sum, conf["matrix"])) == conf["frames"] >= 0.9 * frames / 2
        happy_row = conf["matrix"][conf["labels"].index("happy")]
        assert report["accuracy"] == round(happy_row[conf["labels"].index("happy")]
                                           / conf["frames"], 4)
        folder = out / name
        assert json.loads((folder / "report.json").read_text()) == report
        _check_report_page(folder, report)
        conns, answers = read_bag(folder / "results")
        assert conns[0].msgtype == "fer_msgs/msg/EmotionArray"
        qos = conns[0].ext.offered_qos_profiles  # the node's publisher, not []
        assert qos and qos[0].reliability.name == "RELIABLE"
        assert len(answers) >= report["frames_answered"]
        rows = (folder / "frames.csv").read_text().splitlines()
        assert len(rows) == frames + 1
        by_frame[name] = {int(r.split(",")[0]): r.split(",")[4] for r in rows[1:]
                          if r.split(",")[3] == "1"}
        assert "waiting for Image" in (folder / "node.log").read_text()
    both = set(by_frame["ssd"]) & set(by_frame["yunet"])
    assert doc["frames_answered_by_both"] == len(both) >= 0.9 * frames
    same = sum(by_frame["ssd"][i] == by_frame["yunet"][i] for i in both)
    assert doc["label_agreement"] == round(same / len(both), 4)
    cells, plots, embedded = _html_parts((out / "compare.html").read_text())
    assert embedded == doc and cells["A.frames_published"] == cells["B.frames_published"] == "30"
    assert {"ssd-latency", "yunet-latency", "ssd-timeline", "yunet-timeline"} <= set(plots)


def test_evaluate_stops_with_the_node_refusal_when_nothing_is_answered(tmp_path):
    from test_bag_files import Rosbag2Topic, images, write_mcap, write_metadata

    depth = Rosbag2Topic("/camera/depth", "sensor_msgs/msg/Image",  # a depth camera's bag
                         images(40, encoding="32FC1", width=32, height=24),
                         reliability="reliable")
    bag = tmp_path / "depth"
    bag.mkdir()
    write_mcap(bag / "depth_0.mcap", [depth])
    write_metadata(bag, "mcap", ["depth_0.mcap"], [depth])
    out = tmp_path / "eval"
    run = fer_bag("evaluate", str(bag), "--lockstep", "--out", str(out), "-q",
                  *classifier_args(tmp_path), timeout=300)
    assert run.returncode == 1, run.stderr[-2000:]
    err = run.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "answered none of the" in err and "refused: image encoding '32FC1' is depth or raw data" in err
    report = json.loads((out / "report.json").read_text())
    assert report["frames_answered"] == 0
    # stopped once the node's own counters showed STOP_AFTER_REFUSED refusals, not after 40
    assert 5 <= report["frames_published"] <= 8 < 40
    (reason, count), = report["frames_unanswered"].items()
    assert reason.startswith("image encoding '32FC1' is depth or raw data")
    assert count == report["frames_published"] and f"{count} refused: " in err
    assert report["node"]["frames_bad"] >= 5 and report["node"]["frames_processed"] == 0
    assert "skipping a bad image: image encoding '32FC1' is depth or raw data" in (out / "node.log").read_text()
    assert (out / "report.html").is_file()


def _one_line_error(capsys, args: list[str], expected: str) -> None:
    assert cli.main(args) == 2, args
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err and "Traceback" not in err, err


def test_errors_are_one_line_with_exit_code_2(tmp_path, video, capsys):
    path, _ = video
    bag = tmp_path / "bag"
    assert cli.main(["from-video", str(path), str(bag), "--max-frames", "2", "-q"]) == 0
    capsys.readouterr()
    odd = tmp_path / "odd"  # a bag whose type no installed package defines
    with Writer(odd, version=9) as writer:
        conn = writer.add_connection("/odd", "nosuch_msgs/msg/Thing", msgdef="int32 a",
                                     rihs01="RIHS01_" + "0" * 64)
        writer.write(conn, 1, b"\x00\x01\x00\x00\x01\x00\x00\x00")
    (tmp_path / "empty").mkdir()
    missing = str(tmp_path / "missing")
    _one_line_error(capsys, ["play", missing], "no such bag")
    _one_line_error(capsys, ["evaluate", missing, "--json"], "no such bag")
    _one_line_error(capsys, ["play", str(tmp_path / "empty")], "no metadata.yaml")
    _one_line_error(capsys, ["play", str(bag), "--topics", "/nope"], "topic /nope is not in the bag")
    _one_line_error(capsys, ["evaluate", str(bag), "--image-topic", "/nope"], "topic /nope is not")
    _one_line_error(capsys, ["play", str(odd)], "nothing to play: topic /odd (1 messages): "
                    "unknown message type nosuch_msgs/msg/Thing")
    _one_line_error(capsys, ["evaluate", str(odd)], "no sensor_msgs/msg/Image")
    _one_line_error(capsys, ["from-video", missing, str(tmp_path / "x")], "no such file")
    _one_line_error(capsys, ["from-video", str(path), str(bag)], "already exists")
    _one_line_error(capsys, ["record", str(tmp_path / "rec"), "/nope", "--discovery-timeout", "1"],
                    "topic /nope has no publisher")
    assert not (tmp_path / "rec").exists()
    frames = tmp_path / "frames"  # 2 good images, then a broken one: no partial bag is left
    frames.mkdir()
    for k in range(2):
        cv2.imwrite(str(frames / f"{k}.png"), np.full((8, 8, 3), 9 * k, np.uint8))
    (frames / "2.png").write_bytes(b"\x89PNG broken")
    _one_line_error(capsys, ["from-video", str(frames), str(tmp_path / "partial"), "--fps", "5",
                             "-q"], "unreadable image")
    assert not (tmp_path / "partial").exists()
    empty_topic = tmp_path / "no_frames"  # an image topic with 0 messages: nothing to evaluate
    with Writer(empty_topic, version=9) as writer:
        writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=typestore())
    _one_line_error(capsys, ["evaluate", str(empty_topic)], "holds no messages: nothing to evaluate")
    # and as a real process: exit code 2, one line, no traceback
    run = fer_bag("play", missing)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
