"""The SSD on its ONNX graph: equal to the official graph, no phantom faces on close-ups, small
faces found, the same boxes on every runtime, and made reproducibly by `fer-models fetch`."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_ros.core import model_files as mf
from fer_ros.core.detector import SSD_CONFIG, SSD_MODEL, SSD_ONNX, SSD_ONNX_INT8, make_detector
from fer_ros.core.ssd_decode import PBTXT_STEPS, decode, feature_size, priors
from fer_ros.core.ssd_runtime import make_runtime
from fer_ros.core.types import Box

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"
# dlib's own annotations of dlib_2008_002506.jpg (examples/faces), x1, y1, x2, y2
DLIB_FACES = [(125, 65, 214, 155), (224, 95, 314, 185), (329, 78, 437, 186)]


def sample(name: str) -> np.ndarray:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample {path} is absent (../shared beside the repo is needed)")
    return cv2.imread(str(path))


def corner_box(c) -> Box:
    return Box(int(c[0]), int(c[1]), int(c[2] - c[0]), int(c[3] - c[1]))


def assert_same_faces(ref, got, min_iou: float, max_score_diff: float, what: str = "") -> None:
    """As many faces in ``got`` as in ``ref``, each of ``ref`` matched by a box of ``got`` with
    IoU >= min_iou and a score within max_score_diff."""
    assert len(ref) == len(got), what
    for a in ref:
        best = max(got, key=lambda b: a.box.iou(b.box))
        assert a.box.iou(best.box) >= min_iou and abs(a.score - best.score) < max_score_diff, what


@pytest.fixture(scope="module")
def ssd():
    return make_detector("ssd")


@pytest.fixture(scope="module")
def yunet():
    return make_detector("yunet")


def test_onnx_graph_equals_the_official_graph_at_300x300():
    """Same head outputs, priors and detections as OpenCV running the TensorFlow graph (where
    the .pbtxt's steps and TensorFlow's padding are right: a 300x300 blob)."""
    if not hasattr(cv2.dnn, "readNetFromTensorflow"):
        pytest.skip("this OpenCV has no TensorFlow importer")
    net = cv2.dnn.readNetFromTensorflow(str(mf.resolve_model(SSD_MODEL)),
                                        str(mf.resolve_model(SSD_CONFIG)),
                                        **({"engine": cv2.dnn.ENGINE_CLASSIC}
                                           if hasattr(cv2.dnn, "ENGINE_CLASSIC") else {}))
    blob = cv2.dnn.blobFromImage(sample("dlib_2008_002506.jpg"), 1.0, (300, 300),
                                 (104, 177, 123), swapRB=False, crop=False)
    net.setInput(blob)
    ref_loc, ref_conf, ref_priors, ref_det = net.forward(
        ["mbox_loc", "mbox_conf_flatten", "mbox_priorbox", "detection_out"])
    loc, conf = make_runtime("onnxruntime", mf.resolve_model(SSD_ONNX))(blob)
    np.testing.assert_allclose(loc, ref_loc.reshape(-1, 4), atol=1e-4)
    np.testing.assert_allclose(conf, ref_conf.reshape(-1, 2), atol=1e-5)
    p = priors(300, 300, PBTXT_STEPS)
    corners = np.concatenate([p[:, :2] - p[:, 2:] / 2, p[:, :2] + p[:, 2:] / 2], axis=1)
    np.testing.assert_allclose(corners, ref_priors.reshape(2, -1, 4)[0], atol=1e-6)
    boxes = decode(loc, p)
    det = ref_det.reshape(-1, 7)
    det = det[det[:, 2] > 0.5]
    assert len(det) == 3
    for row in det:
        i = int(np.argmin(np.abs(boxes - row[3:7]).sum(1)))
        np.testing.assert_allclose(boxes[i], row[3:7], atol=1e-4)
        assert abs(conf[i, 1] - row[2]) < 1e-4


def test_true_strides_and_feature_sizes():
    assert [feature_size(300, s) for s in (8, 16, 32, 64)] == [38, 19, 10, 5]
    assert [feature_size(480, s) for s in (8, 16, 32, 64)] == [60, 30, 15, 8]
    p = priors(640, 480)
    last = p[-4:]  # the conv9_2 head's last cell: its centre lies inside the image
    assert np.all(last[:, 0] < 1) and np.all(last[:, 1] <= 1)  # 480 = 7.5 cells of 64
    assert len(p) == sum(feature_size(640, s) * feature_size(480, s) * k
                         for s, k in ((8, 4), (16, 6), (32, 6), (64, 6), (64, 4), (64, 4)))


@pytest.mark.parametrize("size", [(300, 300), (640, 480), (644, 484), (512, 384), (352, 264)])
def test_boxes_sit_on_the_faces_at_any_input_size(ssd, size):
    """The symmetric padding: no shift of the boxes at blob sizes other than 300x300."""
    from fer_ros.core.ssd_detector import SsdPass

    image = sample("dlib_2008_002506.jpg")
    old = ssd.passes
    try:
        ssd.passes = (SsdPass(0.0, size),)
        found = sorted((d.box for d in ssd.detect(image)), key=lambda b: b.x)
    finally:
        ssd.passes = old
    assert len(found) == 3
    for box, ref in zip(found, DLIB_FACES):
        assert box.iou(corner_box(ref)) >= 0.6, (size, box, ref)


@pytest.mark.parametrize("zoom", [0.35, 0.5, 0.6, 0.75, 0.9, 1.0])
def test_close_ups_give_exactly_one_face_where_yunet_sees_it(ssd, yunet, zoom):
    """Square crops around the face of a real photo, down to a crop barely larger than the
    face, at several output sizes: one face, overlapping YuNet's box."""
    image = sample("fer_justin.jpg")
    ref = yunet.detect(image)[0].box
    cx, cy = ref.center
    half = max(ref.w, ref.h) / 2 / zoom * 0.75
    x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
    x1, y1 = int(min(cx + half, image.shape[1])), int(min(cy + half, image.shape[0]))
    crop = image[y0:y1, x0:x1]
    for side in (crop.shape[0], 480):
        frame = cv2.resize(crop, (side, side))
        faces = ssd.detect(frame)
        assert len(faces) == 1, (zoom, side, faces)
        theirs = yunet.detect(frame)
        assert theirs and faces[0].box.iou(theirs[0].box) >= 0.5, (zoom, side, faces, theirs)


def _small_face_frame(width: int, dx: int, dy: int) -> tuple[np.ndarray, list[Box]]:
    """dlib_2008_002506.jpg rescaled so its faces are ``width`` px wide, in a 640x480 frame."""
    image = sample("dlib_2008_002506.jpg")
    s = width / np.mean([b[2] - b[0] for b in DLIB_FACES])
    small = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    frame = cv2.resize(sample("fer_no-faces.jpg"), (640, 480))
    h, w = small.shape[:2]
    dx, dy = min(dx, 640 - w), min(dy, 480 - h)
    frame[dy:dy + h, dx:dx + w] = small
    return frame, [Box(int(x1 * s) + dx, int(y1 * s) + dy, int((x2 - x1) * s), int((y2 - y1) * s))
                   for x1, y1, x2, y2 in DLIB_FACES]


@pytest.mark.parametrize("width", [24, 32, 48])
def test_small_faces_are_found_from_24_px(ssd, width):
    found = 0
    positions = [(20, 30), (300, 200), (450, 380)]
    for dx, dy in positions:
        frame, truth = _small_face_frame(width, dx, dy)
        dets = ssd.detect(frame)
        found += sum(any(d.box.iou(t) >= 0.5 for d in dets) for t in truth)
        assert len(dets) <= len(truth) + 1  # at most one stray box per frame
    assert found >= 8, f"{found} of 9 faces of {width} px found"


def test_the_close_up_pass_runs_only_when_the_first_pass_needs_it():
    """One network pass for a frame of people at a distance; two for a close-up (the first pass
    drops its too-large box) and for a frame with no face."""
    image = sample("fer_justin.jpg")
    det = make_detector("ssd")
    calls = []
    inner = det.runtime
    det.runtime = lambda blob: calls.append(blob.shape) or inner(blob)
    for frame, passes, faces in ((_small_face_frame(48, 100, 100)[0], 1, 3),
                                 (cv2.resize(image[77:286, 84:293], (480, 480)), 2, 1),
                                 (cv2.resize(sample("fer_no-faces.jpg"), (640, 480)), 2, 0)):
        calls.clear()
        assert len(det.detect(frame)) == faces
        assert len(calls) == passes, calls


def test_the_legacy_300x300_path_misses_those_small_faces():
    """What the ONNX path fixes (the control for the test above)."""
    ssd_tf = make_detector("ssd_tf")
    frame, truth = _small_face_frame(24, 300, 200)
    assert not any(d.box.iou(t) >= 0.5 for d in ssd_tf.detect(frame) for t in truth)


def test_every_runtime_gives_the_same_boxes():
    onnx = mf.resolve_model(SSD_ONNX)
    frames = [sample("dlib_2008_002506.jpg"), sample("fer_justin.jpg"),
              _small_face_frame(32, 100, 100)[0]]
    results = {}
    for runtime in ("openvino", "onnxruntime", "opencv"):
        det = make_detector("ssd", runtime=runtime)
        results[runtime] = [det.detect(f) for f in frames]
        assert det.runtime.name == runtime
    for runtime in ("openvino", "opencv"):
        for ref, got in zip(results["onnxruntime"], results[runtime]):
            assert_same_faces(ref, got, 0.9, 0.05, runtime)
    assert onnx.is_file()


def test_openvino_keeps_only_the_most_recent_shapes_compiled():
    """Each compiled shape costs tens of MB: frames of many sizes must not pile them up."""
    runtime = make_runtime("openvino", mf.resolve_model(SSD_ONNX_INT8))
    shapes = [(1, 3, 64 + 32 * i, 96) for i in range(runtime.MAX_SHAPES + 2)]
    for shape in shapes + [shapes[-3]]:
        loc, conf = runtime(np.zeros(shape, np.float32))
        assert conf.shape[1] == 2 and len(loc) == len(conf)
    assert list(runtime._requests) == shapes[-runtime.MAX_SHAPES:-3] + shapes[-2:] + [shapes[-3]]


def test_the_int8_model_gives_the_float_models_boxes():
    """The quantised graph (the default) against the float one, on real photos, a close-up and
    small faces: same faces, boxes IoU >= 0.85, scores within 0.1."""
    image = sample("fer_justin.jpg")
    frames = [sample("dlib_2008_002506.jpg"), image, image[77:286, 84:293],
              _small_face_frame(32, 100, 100)[0], _small_face_frame(48, 300, 200)[0]]
    float_ssd = make_detector("ssd", precision="float")
    int8_ssd = make_detector("ssd", precision="int8")
    assert int8_ssd.runtime is not float_ssd.runtime
    for frame in frames:
        ref = float_ssd.detect(frame)
        assert ref
        assert_same_faces(ref, int8_ssd.detect(frame), 0.85, 0.1)


def test_the_int8_model_is_what_the_quantize_script_makes(tmp_path):
    """models/ssd_res10_int8.onnx comes from scripts/quantize_ssd.py, byte for byte."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "quantize_ssd", Path(__file__).resolve().parents[1] / "scripts" / "quantize_ssd.py")
    quantize_ssd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quantize_ssd)
    if not (quantize_ssd.WILD / "labels.csv").is_file():
        pytest.skip("../shared/data/wild-dev is absent")
    out = tmp_path / "int8.onnx"
    quantize_ssd.quantize(mf.resolve_model(SSD_ONNX), out, quantize_ssd.calibration_frames(100))
    entry = mf.load_manifest()["ssd_onnx_int8"]
    assert mf.sha256_file(out) == entry.sha256


def test_fetch_makes_the_onnx_file_reproducibly(tmp_path):
    """`fer-models fetch` derives it from the official weights: byte-identical (sha256)."""
    dirs = [tmp_path]
    entries = mf.load_manifest()
    shutil.copyfile(mf.resolve_model("ssd_weights"), tmp_path / "w.pb")
    (tmp_path / "face_detector").mkdir()
    for name in ("ssd_weights", "ssd_config"):
        shutil.copyfile(mf.resolve_model(name), tmp_path / entries[name].path)
    path, how = mf.fetch_model(entries["ssd_onnx"], dirs, None, entries)
    assert how == "made" and path == tmp_path / entries["ssd_onnx"].path
    assert mf.sha256_file(path) == entries["ssd_onnx"].sha256
    path.write_bytes(b"corrupt")
    with pytest.raises(mf.ModelError, match="corrupt or outdated"):
        mf.fetch_model(entries["ssd_onnx"], dirs, None, entries)


def test_unknown_runtime_and_cuda_without_a_cuda_build_are_refused():
    from fer_ros.core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown ssd_runtime 'tensorrt'"):
        make_detector("ssd", runtime="tensorrt")
    with pytest.raises(ConfigError, match="unknown ssd_precision 'fp4'"):
        make_detector("ssd", precision="fp4")
    with pytest.raises(ConfigError, match="openvino.*CPU"):
        make_detector("ssd", runtime="openvino", device="cuda")


def test_without_opencvs_tensorflow_importer(monkeypatch):
    """OpenCV 5.1 has no readNetFromTensorflow: the ONNX SSD still runs on every runtime, the
    legacy graph and the conversion say what to do (checked for real with OpenCV 5.1.0 in a
    scratch venv, see README)."""
    from fer_ros.core.errors import ModelError
    from fer_ros.core.ssd_export import export

    monkeypatch.delattr(cv2.dnn, "readNetFromTensorflow")
    image = sample("dlib_2008_002506.jpg")
    for runtime in ("openvino", "onnxruntime", "opencv"):
        assert len(make_detector("ssd", runtime=runtime).detect(image)) == 3
    with pytest.raises(ModelError, match="no TensorFlow importer.*detector 'ssd'"):
        make_detector("ssd_tf")
    with pytest.raises(ModelError, match="TensorFlow importer went in 5.1"):
        export(mf.resolve_model(SSD_MODEL), mf.resolve_model(SSD_CONFIG), "/nonexistent/x.onnx")
