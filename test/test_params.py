"""Parameter spec, config/emotion.yaml defaults and validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fer_ros import params
from fer_ros.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
YAML = REPO / "config" / "emotion.yaml"


def test_yaml_is_a_ros_params_file_with_every_parameter():
    data = yaml.safe_load(YAML.read_text())
    assert list(data) == ["/**"] and list(data["/**"]) == ["ros__parameters"]
    assert set(data["/**"]["ros__parameters"]) == set(params.SPECS)


def test_defaults_have_the_spec_types_and_documented_values():
    defaults = params.load_defaults(YAML)
    assert set(defaults) == set(params.SPECS)
    for name, spec in params.SPECS.items():
        assert type(defaults[name]) is spec.type, name  # exact: ROS types a 1 as integer
    assert defaults["detector"] == "ssd"
    assert defaults["ssd_threshold"] == 0.35 and defaults["nms_threshold"] == 0.3
    assert defaults["ssd_precision"] == "int8"
    assert defaults["classifier_model"] == "fer7" and defaults["device"] == "cpu"
    assert defaults["input_transport"] == "raw"


def test_load_defaults_finds_the_file():
    path = params.config_file()
    assert path.name == "emotion.yaml" and path.is_file()
    assert params.load_defaults() == params.load_defaults(path)


def test_validate_normalises_and_accepts_partial_dicts():
    assert params.validate({}) == {}
    out = params.validate({"ssd_threshold": 1, "min_face_size": 30, "flip_tta": False})
    assert out == {"ssd_threshold": 1.0, "min_face_size": 30, "flip_tta": False}
    assert type(out["ssd_threshold"]) is float


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"detector": "haar"}, r"detector='haar': must be one of: ssd, yunet"),
        ({"ssd_threshold": 1.5}, r"ssd_threshold=1.5 is out of range: allowed 0.0 to 1.0"),
        ({"nms_threshold": -0.1}, r"nms_threshold=-0.1 is out of range"),
        ({"min_face_size": 5000}, r"min_face_size=5000 is out of range: allowed 0 to 4096"),
        ({"min_face_size": 2.5}, r"min_face_size=2.5: expected type integer"),
        ({"min_face_size": True}, r"min_face_size=True: expected type integer"),
        ({"flip_tta": "yes"}, r"flip_tta='yes': expected type bool"),
        ({"ssd_threshold": "0.5"}, r"ssd_threshold='0.5': expected type double \(0.0 to 1.0\)"),
        ({"device": "tpu"}, r"device='tpu': must be one of: cpu, cuda"),
        ({"input_transport": "theora"}, r"one of: raw, compressed"),
        ({"classifier_model": " "}, r"classifier_model must not be empty"),
        ({"track_iou_threshold": 0.0}, r"track_iou_threshold=0.0 is out of range"),
        ({"smoothing_time_constant_s": 61.0}, r"allowed 0.0 to 60.0"),
        ({"detectr": "ssd"}, r"unknown parameter 'detectr': known are detector, "),
    ],
)
def test_validate_errors_name_parameter_value_and_allowed(values, message):
    with pytest.raises(ConfigError, match=message):
        params.validate(values)


def test_resolve_applies_overrides():
    resolved = params.resolve({"detector": "yunet"})
    assert resolved["detector"] == "yunet"
    assert resolved["nms_threshold"] == params.load_defaults()["nms_threshold"]


def test_descriptor_fields():
    f = params.SPECS["ssd_threshold"].descriptor_fields()
    assert f["type"] == "double" and f["floating_point_range"] == (0.0, 1.0, 0.0)
    assert f["integer_range"] is None and f["additional_constraints"] == "0.0 to 1.0"
    i = params.SPECS["track_max_missed"].descriptor_fields()
    assert i["type"] == "integer" and i["integer_range"] == (0, 1000, 1)
    s = params.SPECS["detector"].descriptor_fields()
    assert s["type"] == "string" and "ssd, yunet" in s["description"]
    assert s["floating_point_range"] is None and s["integer_range"] is None
    assert params.SPECS["flip_tta"].descriptor_fields()["type"] == "bool"
    for spec in params.SPECS.values():
        assert spec.description and spec.descriptor_fields()["name"] == spec.name


def _write(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": body}}))
    return path


def test_bad_params_files(tmp_path):
    good = yaml.safe_load(YAML.read_text())["/**"]["ros__parameters"]
    with pytest.raises(ConfigError, match="lacks parameter.*detector"):
        params.load_defaults(_write(tmp_path, {k: v for k, v in good.items() if k != "detector"}))
    with pytest.raises(ConfigError, match="nms_threshold: 0 must be written as a float"):
        params.load_defaults(_write(tmp_path, {**good, "nms_threshold": 0}))
    with pytest.raises(ConfigError, match=r"p.yaml: parameter ssd_threshold=2.0 is out of range"):
        params.load_defaults(_write(tmp_path, {**good, "ssd_threshold": 2.0}))
    with pytest.raises(ConfigError, match="unknown parameter 'extra'"):
        params.load_defaults(_write(tmp_path, {**good, "extra": 1}))
    (tmp_path / "flat.yaml").write_text("detector: ssd\n")
    with pytest.raises(ConfigError, match="not a ROS 2 params file"):
        params.load_defaults(tmp_path / "flat.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        params.load_defaults(tmp_path / "missing.yaml")


def test_params_module_is_ros_free():
    import subprocess
    import sys

    code = ("import sys, fer_ros.params, fer_ros.core.pipeline, fer_ros.core.drawing, "
            "fer_ros.core.image_codec, fer_ros.cli.detect; "
            "bad = [m for m in sys.modules if m.startswith(('rclpy', 'sensor_msgs', 'fer_msgs'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_choices_are_the_cores_own_lists():
    """params.py stays free of cv2/onnx imports, so it spells the choice lists out: they must
    be the lists the core's factories accept."""
    from fer_ros.core.detector import DETECTORS, SSD_PRECISIONS
    from fer_ros.core.classifier_runtime import RUNTIMES as CLASSIFIER_RUNTIMES
    from fer_ros.core.ssd_runtime import RUNTIMES

    assert params.SPECS["detector"].choices == DETECTORS
    assert params.SPECS["ssd_runtime"].choices == RUNTIMES
    assert params.SPECS["ssd_precision"].choices == SSD_PRECISIONS
    assert params.SPECS["classifier_runtime"].choices == CLASSIFIER_RUNTIMES


def test_readme_parameter_table_is_the_generated_one():
    """README's table = `python -m fer_ros.params` (specs + emotion.yaml): no stale row."""
    readme = (REPO / "README.md").read_text()
    assert params.markdown_table() in readme, "regenerate: python -m fer_ros.params"


def test_one_source_for_each_default():
    """emotion.yaml sets exactly the spec's parameters, and a core constructor given no
    argument takes the YAML's value: none writes a default literal of its own."""
    import inspect

    from fer_ros.core.classifier import EmotionClassifier
    from fer_ros.core.detector import DETECTORS, make_detector, threshold_param
    from fer_ros.core.factory import classifier_path
    from fer_ros.core.smoothing import EmaSmoother
    from fer_ros.core.ssd_detector import SsdOnnxFaceDetector
    from fer_ros.core.ssd_tf import SsdTfFaceDetector
    from fer_ros.core.tracking import FaceTracker
    from fer_ros.core.yunet import YunetFaceDetector

    defaults = params.load_defaults()
    assert set(params.read_params_file(params.config_file())) == set(params.SPECS)
    for name in DETECTORS:
        assert threshold_param(name) in params.SPECS
    for name in ("ssd", "yunet"):  # ssd_tf shares their code path (and needs OpenCV < 5.1)
        det = make_detector(name)
        assert (det.score_threshold, det.nms_threshold, det.min_size) == (
            defaults[threshold_param(name)], defaults["nms_threshold"], defaults["min_face_size"])
    clf = EmotionClassifier(classifier_path(defaults["classifier_model"]))
    assert (clf.crop_margin, clf.bf16, clf.device.type) == (
        defaults["crop_margin"], defaults["classifier_bf16"], defaults["device"])
    tracker = FaceTracker()
    assert (tracker.iou_threshold, tracker.max_missed) == (
        defaults["track_iou_threshold"], defaults["track_max_missed"])
    assert EmaSmoother().time_constant_s == defaults["smoothing_time_constant_s"]
    literal_free = {
        make_detector: ("score_threshold", "nms_threshold", "min_size", "runtime", "threads",
                        "device", "precision"),
        SsdOnnxFaceDetector: ("score_threshold", "nms_threshold", "min_size"),
        SsdTfFaceDetector: ("score_threshold", "nms_threshold", "min_size"),
        YunetFaceDetector: ("score_threshold", "nms_threshold", "min_size"),
        EmotionClassifier: ("device", "crop_margin", "flip_tta", "bf16"),
        FaceTracker: ("iou_threshold", "max_missed"),
        EmaSmoother: ("time_constant_s",),
    }
    for made, names in literal_free.items():
        signature = inspect.signature(made)
        assert {n: signature.parameters[n].default for n in names} == dict.fromkeys(names), made


def test_live_parameters_come_from_the_spec_and_the_detector_registry():
    """The parameters the node applies at once: those the spec marks live plus each registered
    detector's score threshold (a new detector needs no list of its own), and the same set the
    node applied before the list was derived."""
    from fer_ros.core.detector import REGISTRY
    from fer_ros.core.factory import live_params

    live = live_params()
    thresholds = {entry.threshold_param for entry in REGISTRY.values()}
    assert thresholds <= set(params.SPECS)
    assert live == thresholds | {name for name, spec in params.SPECS.items() if spec.live}
    assert live == {"ssd_threshold", "yunet_threshold", "nms_threshold", "min_face_size",
                    "crop_margin", "flip_tta", "publish_annotated", "smoothing_time_constant_s",
                    "diagnostics_warn_processing_ms", "diagnostics_warn_input_hz_min",
                    "diagnostics_stall_s", "diagnostics_period_s"}
    assert not {"detector", "classifier_model", "tracking"} & live  # need a new configure
