"""EmotionClassifier: preprocessing identical to training, checkpoints with 7 or 6 labels,
temperature, flip TTA, errors; the shipped fer7 model on a real smiling face."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fer_ros.core.checkpoint import make_checkpoint, normalize_batch, save_checkpoint
from fer_ros.core.classifier import EmotionClassifier, crop_faces, crop_region, preprocess_faces
from fer_ros.core.errors import ConfigError, ModelError
from fer_ros.core.network import EmotionNet
from fer_ros.core.types import Box

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples"
SIX = ["angry", "fear", "happy", "sad", "surprise", "neutral"]
NORM = {"mean": 0.507, "std": 0.255}


def sample(name: str) -> np.ndarray:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample {path} is absent (../shared beside the repo is needed)")
    return cv2.imread(str(path))


def write_checkpoint(path: Path, labels: list[str], temperature: float = 1.0, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = EmotionNet(num_classes=len(labels), arch={"widths": [8, 16], "dropout": 0.0}).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so eval mode matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    save_checkpoint(make_checkpoint(model, labels, NORM, {"test": True}, temperature=temperature), path)
    return path


@pytest.fixture(scope="module")
def six_ckpt(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "six.pt", SIX)


def fer7_path() -> Path:
    if not (REPO / "models" / "fer7.pt").is_file():
        pytest.skip("models/fer7.pt (the trained classifier) is not in the repo yet")
    from fer_ros.core.model_files import resolve_model

    return resolve_model("fer7")


def normalize(images: np.ndarray) -> torch.Tensor:
    return normalize_batch(images, NORM)


def test_normalization_is_training_arithmetic():
    images = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    expected = (torch.from_numpy(images).float() / 255.0 - NORM["mean"]) / NORM["std"]
    got = normalize(images)
    assert got.dtype == torch.float32 and got.shape == (5, 1, 48, 48)
    torch.testing.assert_close(got[:, 0], expected, rtol=0, atol=1e-6)


def test_crop_region_is_a_square_around_the_box():
    assert crop_region(Box(100, 100, 50, 100), 0.1) == Box(65, 90, 120, 120)
    assert crop_region(Box(100, 100, 100, 50), 0.0) == Box(100, 75, 100, 100)
    assert crop_region(Box(0, 0, 40, 40), 0.25) == Box(-10, -10, 60, 60)  # may leave the image


def test_crop_faces_gray_resized_crops():
    image = np.zeros((200, 300, 3), np.uint8)
    image[50:150, 100:200] = (0, 0, 255)  # a red square: gray 76
    image[10:30, 250:270] = (255, 255, 255)  # a small white square (upscaled)
    crops = crop_faces(image, [Box(100, 50, 100, 100), Box(250, 10, 20, 20)], 48, 0.0)
    assert crops.shape == (2, 48, 48) and crops.dtype == np.uint8
    assert np.all(crops[0] == 76) and np.all(crops[1] == 255)
    with_margin = crop_faces(image, [Box(100, 50, 100, 100)], 48, 0.25)[0]
    assert with_margin[0, 0] == 0 and with_margin[24, 24] == 76  # black border, red centre


def test_crop_faces_keeps_the_aspect_ratio():
    image = np.zeros((200, 300, 3), np.uint8)
    image[50:150, 125:175] = 255  # a white 50x100 box: its square crop is half white
    crop = crop_faces(image, [Box(125, 50, 50, 100)], 48, 0.0)[0]
    assert np.all(crop[:, 14:34] == 255) and np.all(crop[:, :10] == 0) and np.all(crop[:, 38:] == 0)


def test_crop_faces_at_the_border_replicates_edges():
    image = np.zeros((100, 100, 3), np.uint8)
    image[:, :50] = 255  # left half white
    crop = crop_faces(image, [Box(0, 20, 40, 40)], 40, 0.5)[0]  # region x -20..60 -> 40 px
    assert crop.shape == (40, 40)
    assert np.all(crop[:, :34] == 255) and np.all(crop[:, 36:] == 0)  # white edge replicated


def test_crop_faces_uses_inter_area_when_shrinking():
    image = np.zeros((96, 96, 3), np.uint8)
    image[:, ::2] = 255  # 1-px stripes: area averaging gives flat grey, nearest would not
    crop = crop_faces(image, [Box(0, 0, 96, 96)], 48, 0.0)[0]
    assert np.abs(crop.astype(int) - 128).max() <= 1


def test_preprocess_faces_is_crop_then_normalize():
    image = sample("fer_justin.jpg")
    boxes = [Box(111, 77, 155, 209)]
    expected = normalize(crop_faces(image, boxes, 48, 0.1))
    assert torch.equal(preprocess_faces(image, boxes, NORM, 48, 0.1), expected)


def test_six_class_checkpoint(six_ckpt):
    clf = EmotionClassifier(six_ckpt)
    assert clf.labels == SIX and clf.temperature == 1.0 and clf.input_size == 48
    image = np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = [Box(10, 10, 40, 50), Box(80, 30, 60, 60), Box(0, 0, 160, 120)]
    probs = clf.classify(image, boxes)
    assert probs.shape == (3, 6) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # one batch for all faces == one face at a time
    single = np.concatenate([clf.classify(image, [b]) for b in boxes])
    np.testing.assert_allclose(probs, single, atol=1e-5)


def test_no_faces_gives_empty_array(six_ckpt):
    clf = EmotionClassifier(six_ckpt)
    assert clf.classify(np.zeros((10, 10, 3), np.uint8), []).shape == (0, 6)
    assert clf.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, 6)


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_predict_matches_the_network_on_normalised_input(six_ckpt, runtime):
    """Either runtime gives the unfolded network's probabilities, any batch size; torch runs
    the batch-norm-folded eager model (no TorchScript, no batch norm left)."""
    from fer_ros.core.checkpoint import load_checkpoint, network_from_checkpoint

    clf = EmotionClassifier(six_ckpt, runtime=runtime)
    assert clf.runtime == runtime
    if runtime == "torch":
        assert not isinstance(clf.network.model, torch.jit.ScriptModule)
        kinds = {type(m) for m in clf.network.model.modules()}
        assert torch.nn.Conv2d in kinds and not kinds & {torch.nn.BatchNorm2d, torch.nn.Dropout}
    eager = network_from_checkpoint(load_checkpoint(six_ckpt))
    for n in (1, 3, 4):
        faces = np.random.default_rng(n).integers(0, 256, (n, 48, 48), dtype=np.uint8)
        with torch.no_grad():
            expected = torch.softmax(eager(normalize(faces)), 1).numpy()
        np.testing.assert_allclose(clf.predict(faces), expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(N, 48, 48\)"):
        clf.predict(np.zeros((2, 32, 32), np.uint8))


def test_auto_runtime_takes_onnxruntime_on_the_cpu_in_float32(six_ckpt):
    assert EmotionClassifier(six_ckpt).runtime == "auto -> onnxruntime"
    assert (EmotionClassifier(six_ckpt, bf16=True).runtime
            == "auto -> torch (classifier_bf16 runs in torch)")


def test_runtime_errors_are_one_line(six_ckpt, monkeypatch):
    with pytest.raises(ConfigError, match="unknown classifier_runtime 'tensorrt'"):
        EmotionClassifier(six_ckpt, runtime="tensorrt")
    with pytest.raises(ConfigError, match="for device cuda or classifier_bf16 use"):
        EmotionClassifier(six_ckpt, runtime="onnxruntime", bf16=True)
    monkeypatch.setitem(sys.modules, "onnx", None)  # as on a rosdep install: no onnx
    with pytest.raises(ConfigError, match=r"onnx is not installed \(pip install 'onnx>="):
        EmotionClassifier(six_ckpt, runtime="onnxruntime")
    assert (EmotionClassifier(six_ckpt).runtime
            == "auto -> torch (onnx is not installed)")


def test_runtimes_agree_on_real_faces():
    from fer_ros.core.detector import make_detector

    try:
        detector = make_detector("ssd")
    except ModelError as exc:
        pytest.skip(f"SSD weights unavailable: {exc}")
    by_runtime = {r: EmotionClassifier(fer7_path(), runtime=r) for r in ("torch", "onnxruntime")}
    for name in ("fer_justin.jpg", "dlib_2008_002506.jpg"):
        image = sample(name)
        boxes = [d.box for d in detector.detect(image)]
        assert boxes, name
        for tta in (False, True):
            probs = []
            for clf in by_runtime.values():
                clf.flip_tta = tta  # a live parameter: no rebuild
                probs.append(clf.classify(image, boxes))
            np.testing.assert_allclose(probs[0], probs[1], atol=1e-5)


def test_temperature_softens(tmp_path):
    faces = np.random.default_rng(3).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    p1 = EmotionClassifier(write_checkpoint(tmp_path / "t1.pt", SIX)).predict(faces)
    clf2 = EmotionClassifier(write_checkpoint(tmp_path / "t2.pt", SIX, temperature=2.0))
    assert clf2.temperature == 2.0
    p2 = clf2.predict(faces)
    expected = torch.softmax(torch.log(torch.from_numpy(p1)) / 2.0, dim=1).numpy()
    np.testing.assert_allclose(p2, expected, atol=1e-5)


def test_flip_tta_averages_logits(six_ckpt):
    from fer_ros.core.checkpoint import load_checkpoint, network_from_checkpoint

    faces = np.random.default_rng(4).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    plain = EmotionClassifier(six_ckpt)
    tta = EmotionClassifier(six_ckpt, flip_tta=True)
    eager = network_from_checkpoint(load_checkpoint(six_ckpt))
    with torch.no_grad():
        x = normalize(faces)
        logits = (eager(x) + eager(torch.flip(x, dims=[3]))) / 2
    np.testing.assert_allclose(tta.predict(faces), torch.softmax(logits, 1).numpy(), atol=1e-5)
    symmetric = np.concatenate([faces[:, :, :24], faces[:, :, :24][:, :, ::-1]], axis=2)
    np.testing.assert_allclose(tta.predict(symmetric), plain.predict(symmetric), atol=1e-5)


def test_a_checkpoint_made_for_flip_tta_always_gets_it(six_ckpt, tmp_path):
    ckpt = torch.load(six_ckpt, weights_only=True)
    ckpt["flip_tta"] = True
    save_checkpoint(ckpt, tmp_path / "flip.pt")
    made_for_it = EmotionClassifier(tmp_path / "flip.pt")  # flip_tta not asked for
    assert made_for_it.flip_tta and not EmotionClassifier(six_ckpt).flip_tta
    faces = np.random.default_rng(6).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    np.testing.assert_allclose(made_for_it.predict(faces),
                               EmotionClassifier(six_ckpt, flip_tta=True).predict(faces), atol=1e-6)
    mirrored = np.ascontiguousarray(faces[:, :, ::-1])
    np.testing.assert_allclose(made_for_it.predict(mirrored), made_for_it.predict(faces), atol=1e-5)
    ckpt["flip_tta"] = "yes"
    save_checkpoint(ckpt, tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="flip_tta must be true or false, got 'yes'"):
        EmotionClassifier(tmp_path / "bad.pt")


def test_bf16_is_close_to_fp32(six_ckpt):
    faces = np.random.default_rng(5).integers(0, 256, (8, 48, 48), dtype=np.uint8)
    fp32 = EmotionClassifier(six_ckpt).predict(faces)
    bf16 = EmotionClassifier(six_ckpt, bf16=True).predict(faces)
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(bf16, fp32, atol=0.03)


@pytest.mark.parametrize(("device", "message"), [("tpu", "unknown device 'tpu'"),
                                                  ("cuda", "CUDA is not available")])
def test_bad_device(six_ckpt, device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ConfigError, match=message):
        EmotionClassifier(six_ckpt, device=device)


def test_bad_margin_and_checkpoint(six_ckpt, tmp_path):
    with pytest.raises(ConfigError, match="crop_margin"):
        EmotionClassifier(six_ckpt, crop_margin=1.5)
    with pytest.raises(ModelError, match="not found"):
        EmotionClassifier(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="corrupt"):
        EmotionClassifier(bad)


def test_fer7_smiling_face_is_happy():
    from fer_ros.core.detector import make_detector

    clf = EmotionClassifier(fer7_path())
    assert clf.labels == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    image = sample("fer_justin.jpg")
    try:
        dets = make_detector("ssd").detect(image)
    except ModelError as exc:
        pytest.skip(f"SSD weights unavailable: {exc}")
    assert len(dets) == 1
    probs = clf.classify(image, [dets[0].box])[0]
    assert clf.labels[int(np.argmax(probs))] == "happy"
    assert EmotionClassifier(fer7_path(), flip_tta=True).classify(image, [dets[0].box]).argmax() == 3


def test_fold_batch_norm_matches_the_unfolded_network_and_leaves_it_alone():
    """Conv+BN2d and Linear+BN1d pairs are folded, dropout dropped, nested blocks flattened."""
    from fer_ros.core.network import fold_batch_norm

    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU()),
        torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(4 * 6 * 6, 5),
        torch.nn.BatchNorm1d(5))
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.3, 3)
            m.weight.data.uniform_(0.5, 2)
            m.bias.data.uniform_(-1, 1)
    net.eval()
    folded = fold_batch_norm(net)
    assert [type(m) for m in folded] == [torch.nn.Conv2d, torch.nn.ReLU, torch.nn.Flatten,
                                         torch.nn.Linear]
    assert isinstance(net[0][1], torch.nn.BatchNorm2d)  # the original is untouched
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def real_face_crops() -> np.ndarray:
    """48x48 gray crops of the real faces the default SSD finds in two sample photos."""
    from fer_ros.core.factory import build_detector
    from fer_ros.params import load_defaults

    detector = build_detector(load_defaults())
    crops = []
    for name in ("dlib_2008_002506.jpg", "fer_justin.jpg"):
        path = SAMPLES / name
        if path.is_file():
            image = cv2.imread(str(path))
            boxes = [d.box for d in detector.detect(image)]
            if boxes:
                crops.append(crop_faces(image, boxes, 48, 0.05))
    if not crops:
        pytest.skip("no sample photos (../shared beside the repo is needed)")
    return np.concatenate(crops)


@pytest.mark.parametrize("model", ["fer7", "fer6", "fer7_fer2013", "ferplus8"])
def test_every_shipped_model_folded_gives_the_unfolded_probabilities(model, real_face_crops):
    """Max abs probability difference < 1e-4 (float32) on real face crops, batch and single."""
    from fer_ros.core.checkpoint import load_checkpoint, network_from_checkpoint
    from fer_ros.core.model_files import resolve_model

    path = resolve_model(model)
    clf = EmotionClassifier(path)
    ckpt = load_checkpoint(path)
    eager = network_from_checkpoint(ckpt)  # unfolded, eval mode, contiguous layout
    x = normalize_batch(real_face_crops, ckpt["normalization"])
    with torch.no_grad():
        logits = eager(x)
        if ckpt.get("flip_tta"):  # fer7 and fer7_fer2013 are made for flip TTA
            logits = (logits + eager(torch.flip(x, dims=[3]))) / 2
        expected = torch.softmax(logits / ckpt["temperature"], dim=1).numpy()
    assert clf.flip_tta == (model in ("fer7", "fer7_fer2013"))
    assert len(real_face_crops) >= 3
    assert np.abs(clf.predict(real_face_crops) - expected).max() < 1e-4
    single = np.concatenate([clf.predict(c[None]) for c in real_face_crops])
    assert np.abs(single - expected).max() < 1e-4
