"""Build the whole pipeline from one parameter dict (see fer_ros/params.py), ROS-free.

The node and ``fer-detect`` both go through here, so a parameter means the same in both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .classifier import EmotionClassifier
from .classifier_base import FaceClassifier
from ..params import SPECS
from .detector import REGISTRY, make_detector, threshold_param
from .detector_base import FaceDetector
from .file_checks import require_file
from .pipeline import EmotionPipeline
from .smoothing import EmaSmoother
from .schedule import FrameSchedule
from .tracking import FaceTracker
from .verify import FaceVerifier

# The second detector's score a new face must reach in the second-stage check: YuNet at 0.3
# keeps nearly every true face and still removes most SSD phantoms (docs/performance.md;
# with detector yunet the SSD checks instead, at the same value: not measured)
VERIFY_THRESHOLD = 0.3


def live_params() -> frozenset[str]:
    """The parameters a running pipeline takes at once (the node's ``_apply_live``): those
    marked ``live`` in fer_ros.params plus every registered detector's score threshold, so a
    new detector's threshold is live by its registration alone."""
    return frozenset({name for name, spec in SPECS.items() if spec.live}
                     | {entry.threshold_param for entry in REGISTRY.values()})


def classifier_path(model: str) -> Path:
    """A shipped model name (``fer7``, ``fer6``) or a path to a checkpoint -> its file."""
    if model.endswith(".pt") or "/" in model or "\\" in model:
        return require_file(Path(model).expanduser(), "classifier checkpoint")
    from .model_files import resolve_model  # local: only shipped names need the manifest

    return resolve_model(model, kind="classifier")


def build_detector(params: Mapping[str, Any]) -> FaceDetector:
    """The face detector the parameters describe."""
    return make_detector(
        params["detector"],
        score_threshold=params[threshold_param(params["detector"])],
        nms_threshold=params["nms_threshold"],
        min_size=params["min_face_size"],
        runtime=params["ssd_runtime"],
        precision=params["ssd_precision"],
        threads=params["detector_threads"],
        device=params["device"],
    )


def detector_description(params: Mapping[str, Any], detector: object) -> str:
    """The detector in a few words for the start-up log, with the SSD runtime that runs it and,
    when ``auto`` chose it, why: "ssd (int8, ssd_runtime auto -> onnxruntime (openvino is not
    installed))"."""
    runtime = getattr(detector, "runtime", None)
    if params["detector"] != "ssd" or runtime is None:
        return params["detector"]
    return (f"ssd ({params['ssd_precision']}, ssd_runtime "
            f"{getattr(runtime, 'choice', getattr(runtime, 'name', '?'))})")


def build_classifier(params: Mapping[str, Any]) -> FaceClassifier:
    """The expression classifier the parameters describe."""
    return EmotionClassifier(
        classifier_path(params["classifier_model"]),
        device=params["device"],
        crop_margin=params["crop_margin"],
        flip_tta=params["flip_tta"],
        bf16=params["classifier_bf16"],
        runtime=params["classifier_runtime"],
    )


def build_pipeline(params: Mapping[str, Any]) -> EmotionPipeline:
    """Detector, classifier, second-stage check, and (when enabled) tracker, smoother and frame
    schedule, from validated params."""
    detector = build_detector(params)
    classifier = build_classifier(params)
    verifier = build_verifier(params)
    tracker = smoother = schedule = None
    if params["tracking"]:
        tracker = FaceTracker(
            iou_threshold=params["track_iou_threshold"], max_missed=params["track_max_missed"],
            min_hits=min(params["confirm_hits"], params["confirm_window"]),
            hit_window=params["confirm_window"],
        )
        smoother = build_smoother(params, classifier.labels)
        schedule = build_schedule(params, detector, tracker, verifier)
    return EmotionPipeline(detector, classifier, tracker=tracker, smoother=smoother,
                           schedule=schedule, verifier=verifier)


def build_verifier(params: Mapping[str, Any]) -> FaceVerifier | None:
    """The second-stage check of new faces (YuNet on a patch), or None when off."""
    if not params["verify_faces"]:
        return None
    second = "yunet" if params["detector"] != "yunet" else "ssd"
    return FaceVerifier(build_detector({**params, "detector": second,
                                        threshold_param(second): VERIFY_THRESHOLD,
                                        "min_face_size": 0}))


def build_schedule(params: Mapping[str, Any], detector, tracker: FaceTracker,
                   verifier: FaceVerifier | None) -> FrameSchedule:
    """The frame schedule of a tracked camera (a second detector for the worker thread when
    full detections run in the background and detect_every is not 1)."""
    background = None
    if params["detect_in_background"] and params["detect_every"] != 1:
        background = build_detector(params)
    return FrameSchedule(detector, tracker, detect_every=params["detect_every"],
                         detect_every_max=params["detect_every_max"],
                         frame_budget_ms=params["frame_budget_ms"],
                         scene_change=params["scene_change"], verifier=verifier,
                         background_detector=background)


def build_smoother(params: Mapping[str, Any], labels: list[str]) -> EmaSmoother | None:
    """The per-track smoother for ``smoothing_time_constant_s`` (None for 0 = off); it needs
    tracking (the caller's job)."""
    tau = params["smoothing_time_constant_s"]
    return EmaSmoother(tau, labels=labels) if tau > 0 else None
