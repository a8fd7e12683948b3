"""Parameters of the node and `fer-detect`: one spec (type, description, range or choices) per
parameter, defaults read from ``config/emotion.yaml`` (the single source of default values),
and one :func:`validate`. ROS-free: the node turns each :class:`ParamSpec` into a
``ParameterDescriptor`` with :meth:`ParamSpec.descriptor_fields`.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from .core.errors import ConfigError
from .core.file_checks import file_problem

PACKAGE = "fer_ros"
CONFIG_NAME = "emotion.yaml"
_ROS_TYPES = {bool: "bool", int: "integer", float: "double", str: "string"}


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, Python type (bool, int, float or str), description, and either an
    inclusive numeric range [min, max] or a tuple of allowed string choices. ``live``: the
    node applies a change to the running pipeline at once (the others wait for the next
    configure); a detector's score threshold is live through its registration instead
    (fer_ros.core.factory.live_params)."""

    name: str
    type: type
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    live: bool = False

    @property
    def ros_type(self) -> str:
        """The ROS parameter type name: "bool", "integer", "double" or "string"."""
        return _ROS_TYPES[self.type]

    def constraints(self) -> str:
        """Human-readable allowed values ("" when any value of the type is allowed)."""
        if self.choices:
            return "one of: " + ", ".join(self.choices)
        if self.min is not None and self.max is not None:
            return f"{self._fmt(self.min)} to {self._fmt(self.max)}"
        return ""

    def descriptor_fields(self) -> dict[str, Any]:
        """What a ``rcl_interfaces/ParameterDescriptor`` needs, as plain values: name, type
        (ros_type), description (choices appended), additional_constraints, and
        floating_point_range / integer_range as (from_value, to_value, step) or None."""
        text = self.description
        if self.choices:
            text += f" ({self.constraints()})"
        numeric = self.min is not None and self.max is not None
        return {
            "name": self.name,
            "type": self.ros_type,
            "description": text,
            "additional_constraints": self.constraints(),
            "floating_point_range": (float(self.min), float(self.max), 0.0)  # type: ignore[arg-type]
            if numeric and self.type is float else None,
            "integer_range": (int(self.min), int(self.max), 1)  # type: ignore[arg-type]
            if numeric and self.type is int else None,
        }

    def accepts(self) -> str:
        """What a value must be, in words ("an integer from 0 to 4096", "true or false", ...)."""
        if self.choices:
            return "one of: " + ", ".join(self.choices)
        if self.type is bool:
            return "true or false"
        kind = {int: "an integer", float: "a number", str: "a non-empty string"}[self.type]
        if self.min is not None and self.max is not None:
            kind += f" from {self.constraints()}"
        return kind

    def check(self, value: Any, *, exact_type: bool = False) -> Any:
        """The value converted to this parameter's type (an int is accepted for a float, unless
        ``exact_type``: ROS refuses an integer for a double); raises ConfigError naming the
        parameter, the value and what is allowed."""
        ok = isinstance(value, self.type) and not (self.type is int and isinstance(value, bool))
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            if exact_type:
                raise ConfigError(f"parameter {self.name}={value!r}: expected type double "
                                  f"({self.constraints()}); write it as {value}.0")
            value, ok = float(value), True
        if not ok:
            raise ConfigError(
                f"parameter {self.name}={value!r}: expected type {self.ros_type}"
                + (f" ({self.constraints()})" if self.constraints() else "")
            )
        if self.choices and value not in self.choices:
            raise ConfigError(f"parameter {self.name}={value!r}: must be {self.constraints()}")
        if self.min is not None and self.max is not None and not self.min <= value <= self.max:
            raise ConfigError(
                f"parameter {self.name}={value!r} is out of range: allowed {self.constraints()}"
            )
        if self.type is str and not value.strip():
            raise ConfigError(f"parameter {self.name} must not be empty")
        return value

    def parse(self, text: str) -> Any:
        """The checked value of a command-line string such as a launch argument (``true``,
        ``20``, ``0.5``, ``yunet``); ConfigError "NAME:='TEXT': expected <accepts()>"."""
        try:
            if self.type is bool:
                if text.strip().lower() not in ("true", "false"):
                    raise ValueError(text)
                value: Any = text.strip().lower() == "true"
            elif self.type is int:
                if not re.fullmatch(r"[+-]?[0-9]+", text.strip()):
                    raise ValueError(text)
                value = int(text)
            elif self.type is float:
                value = float(text)
            else:
                value = text
            return self.check(value)
        except (ValueError, ConfigError):
            raise ConfigError(f"{self.name}:={text!r}: expected {self.accepts()}") from None

    def _fmt(self, v: float) -> str:
        return str(int(v)) if self.type is int else str(float(v))


def _specs(*specs: ParamSpec) -> dict[str, ParamSpec]:
    return {s.name: s for s in specs}


SPECS: dict[str, ParamSpec] = _specs(
    ParamSpec("detector", str, "Face detector: the ResNet-10 SSD on its ONNX graph, YuNet, or "
              "the SSD's original 300x300 TensorFlow graph (reference; misses faces under ~48 px)",
              choices=("ssd", "yunet", "ssd_tf")),
    ParamSpec("ssd_threshold", float, "Minimum SSD face score (ssd and ssd_tf)", 0.0, 1.0),
    ParamSpec("yunet_threshold", float, "Minimum YuNet face score", 0.0, 1.0),
    ParamSpec("ssd_runtime", str, "Inference runtime of the SSD's ONNX graph: auto takes the "
              "first installed of openvino, onnxruntime, opencv and logs which (onnxruntime can "
              "use CUDA with device cuda and onnxruntime-gpu installed)",
              choices=("auto", "openvino", "onnxruntime", "opencv")),
    ParamSpec("ssd_precision", str, "Form of the SSD's ONNX graph: int8 (quantised by "
              "scripts/quantize_ssd.py; faster, the same recall) or float (f32, bf16 in "
              "OpenVINO on CPUs that have it)", choices=("int8", "float")),
    ParamSpec("detector_threads", int, "CPU threads of the face detector", 1, 64),
    ParamSpec("nms_threshold", float,
              "Overlapping face boxes with IoU above this are suppressed", 0.0, 1.0,
              live=True),
    ParamSpec("min_face_size", int,
              "Faces whose shorter box side is below this many pixels are ignored", 0, 4096,
              live=True),
    ParamSpec("classifier_model", str,
              "Expression classifier: a shipped model name (fer7, fer7_photo, fer6, fer7_fer2013, ferplus8; "
              "see models/README.md) or a path to a .pt checkpoint"),
    ParamSpec("crop_margin", float,
              "The square face crop grows by this fraction of the box's longer side on each "
              "side", 0.0, 1.0, live=True),
    ParamSpec("flip_tta", bool, "Also classify the mirrored face and average (up to twice the "
              "classifier time); always on for a checkpoint made for it (fer7, fer7_fer2013)",
              live=True),
    ParamSpec("device", str, "Device of the classifier", choices=("cpu", "cuda")),
    ParamSpec("classifier_bf16", bool, "Run the classifier in bfloat16 (about 2x faster on CPUs "
              "with AVX512-BF16/AMX, slower on others; predictions nearly identical)"),
    ParamSpec("classifier_runtime", str, "Runtime of the classifier's network: auto takes "
              "onnxruntime (about 0.6x torch's time per face) on the CPU in float32 when "
              "onnxruntime and onnx are installed, else torch, and logs which",
              choices=("auto", "onnxruntime", "torch")),
    ParamSpec("publish_annotated", bool, "Publish the annotated image", live=True),
    ParamSpec("input_transport", str, "Image input: sensor_msgs/Image or CompressedImage",
              choices=("raw", "compressed")),
    ParamSpec("autostart", bool, "Configure and activate the node on start"),
    ParamSpec("hri_output", bool, "Also publish ROS4HRI (REP-155) face topics under "
              "/humans/faces (needs hri_msgs and tracking; docs/ros4hri.md)"),
    ParamSpec("hri_cropped_size", int, "Side in pixels of the /humans/faces/<id>/cropped "
              "images", 16, 1024),
    ParamSpec("tracking", bool, "Give faces stable track ids across frames"),
    ParamSpec("track_iou_threshold", float, "Minimum box IoU to continue a track", 0.01, 1.0),
    ParamSpec("track_max_missed", int,
              "Frames a track survives without a matching detection", 0, 1000),
    ParamSpec("confirm_hits", int, "A tracked face is published once it was detected in this "
              "many of the last confirm_window frames (1 = at once); needs tracking", 1, 30),
    ParamSpec("confirm_window", int, "Frames over which confirm_hits are counted", 1, 30),
    ParamSpec("verify_faces", bool, "Second-stage check of every new face: YuNet must find it "
              "too on a patch around it (removes most phantoms; about 2 ms per new face)"),
    ParamSpec("detect_every", int, "Full-frame face detection every this many frames, tracked "
              "faces found around their last box in between; 0 = as the CPU allows (see "
              "frame_budget_ms); 1 = every frame; needs tracking", 0, 1000),
    ParamSpec("detect_every_max", int, "Most frames between full detections when detect_every "
              "is 0 (a new face waits at most this long)", 1, 1000),
    ParamSpec("frame_budget_ms", float, "Time one frame may take when detect_every is 0; "
              "0 = 0.7 of the measured frame period", 0.0, 10000.0),
    ParamSpec("scene_change", float, "A full detection runs when the mean grey level of the "
              "frame changes by more than this share of the range from one frame to the next "
              "(a cut, a pan); 0 = never", 0.0, 1.0),
    ParamSpec("detect_in_background", bool, "Scheduled full detections run on a second thread "
              "while frames go on with the tracked faces (no frame waits for them)"),
    ParamSpec("smoothing_time_constant_s", float,
              "Time constant (s) of per-track smoothing of the probabilities; 0 = off", 0.0, 60.0,
              live=True),
    ParamSpec("diagnostics_period_s", float, "Seconds between diagnostics messages", 0.1, 60.0,
              live=True),
    ParamSpec("diagnostics_warn_processing_ms", float,
              "Diagnostics WARN when the median processing time per frame exceeds this (ms); 0 = never",
              0.0, 60000.0, live=True),
    ParamSpec("diagnostics_warn_input_hz_min", float,
              "Diagnostics WARN when the input frame rate falls below this (Hz); 0 = never",
              0.0, 1000.0, live=True),
    ParamSpec("diagnostics_stall_s", float,
              "Diagnostics ERROR when frames arrive but none is processed or refused for this "
              "long (s), e.g. the worker stuck in one frame; 0 = never", 0.0, 3600.0, live=True),
)


def config_file() -> Path:
    """Where ``emotion.yaml`` is: the ament share directory of fer_ros (if ament_index is
    importable and knows the package), else ``sys.prefix/share/fer_ros/config``, else the
    source tree's ``config/``."""
    candidates: list[Path] = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)) / "config" / CONFIG_NAME)
    except Exception:  # not importable, or the package is not in the ament index
        pass
    candidates.append(Path(sys.prefix) / "share" / PACKAGE / "config" / CONFIG_NAME)
    candidates.append(Path(__file__).resolve().parents[1] / "config" / CONFIG_NAME)
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(
        f"{CONFIG_NAME} not found (looked in {', '.join(str(p.parent) for p in candidates)}): "
        "reinstall fer_ros"
    )


def read_params_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``ros__parameters`` of a ROS 2 params file (first node entry, e.g. ``/**``)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read parameters file {path}: {exc}") from exc
    if isinstance(data, dict):
        for entry in data.values():
            if isinstance(entry, dict) and isinstance(entry.get("ros__parameters"), dict):
                return dict(entry["ros__parameters"])
    raise ConfigError(f"{path} is not a ROS 2 params file: expected '/**:' then 'ros__parameters:'")


MAX_PARAMS_FILE_BYTES = 1 << 20  # a params file of this package is ~2 KB
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml_error(exc: yaml.YAMLError) -> str:
    """A PyYAML error in one line: the problem and where."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def check_params_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The document of a ROS 2 params file given with ``--params-file``, checked the way rcl
    will read it, so that a bad file is one ConfigError line instead of rcl's error and a
    traceback: a readable regular file of at most 1 MiB, valid YAML without aliases, a
    mapping of node names to mappings that hold ``ros__parameters`` mappings (node names may
    nest under namespaces), whose values are scalars, lists of scalars or nested mappings."""
    what = f"parameters file {path}"
    problem = file_problem(path)
    if problem is not None:
        raise ConfigError(f"cannot read {what}: {problem}")
    size = os.stat(path).st_size
    if size > MAX_PARAMS_FILE_BYTES:
        raise ConfigError(f"{what} is {size} bytes: over the {MAX_PARAMS_FILE_BYTES} limit")
    try:
        text = Path(path).read_text()
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=_YamlLoader)):
            raise ConfigError(f"{what}: YAML aliases (*name) are not supported in a params file")
        data = yaml.load(text, Loader=_YamlLoader)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} is not valid YAML: {_yaml_error(exc)}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{what} is not a ROS 2 params file: expected '/**:' (or a node name) "
                          "then 'ros__parameters:'")
    _check_params_tree(data, what, [])
    return data


def _check_params_tree(node: dict, what: str, keys: list[str]) -> None:
    for key, value in node.items():
        here = keys + [str(key)]
        if not isinstance(key, str):
            raise ConfigError(f"{what}: key {key!r} under {'.'.join(keys) or 'the top'} must be a name")
        if key == "ros__parameters":
            if not isinstance(value, dict):
                raise ConfigError(f"{what}: {'.'.join(here)} must be a mapping of parameter names "
                                  "to values")
            _check_param_values(value, what, [])
        elif not isinstance(value, dict):
            raise ConfigError(f"{what}: {'.'.join(here)} must be a mapping (a node name holding "
                              "'ros__parameters:'); parameters go under 'ros__parameters:'")
        else:
            _check_params_tree(value, what, here)


def _check_param_values(values: dict, what: str, prefix: list[str]) -> None:
    scalar = (bool, int, float, str)
    for name, value in values.items():
        full = ".".join(prefix + [str(name)])
        if isinstance(value, dict):
            _check_param_values(value, what, prefix + [str(name)])
        elif isinstance(value, list):
            if not all(isinstance(v, scalar) for v in value):
                raise ConfigError(f"{what}: parameter {full} must be a list of scalars")
            if len({type(v) for v in value}) > 1:
                raise ConfigError(f"{what}: parameter {full}: all list items must have one type")
        elif not isinstance(value, scalar):
            raise ConfigError(f"{what}: parameter {full} has no value" if value is None
                              else f"{what}: parameter {full}: unsupported value {value!r}")


def params_file_names(data: dict[str, Any]) -> list[str]:
    """Every parameter name set in a (checked) params file document, in any node entry."""
    names: list[str] = []

    def walk(node: dict) -> None:
        for key, value in node.items():
            if key == "ros__parameters" and isinstance(value, dict):
                names.extend(_flat_names(value, ""))
            elif isinstance(value, dict):
                walk(value)

    walk(data)
    return names


def _flat_names(values: dict, prefix: str) -> list[str]:
    out: list[str] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        out.extend(_flat_names(value, name + ".") if isinstance(value, dict) else [name])
    return out


# Parameters every rclpy node has (or creates later, like qos_overrides.* on a subscription).
ROS_OWN_PARAMS = ("use_sim_time", "start_type_description_service")
ROS_OWN_PREFIXES = ("qos_overrides.",)


def is_ros_own(name: str) -> bool:
    """True for parameters ROS itself declares on every node (not fer_ros' own)."""
    return name in ROS_OWN_PARAMS or name.startswith(ROS_OWN_PREFIXES)


def unknown_parameter_warning(name: str) -> str:
    """The warning for a parameter name that is not one of SPECS, naming the closest real
    names: "unknown parameter 'detector_treshold' ignored (did you mean 'ssd_threshold'?)"."""
    close = difflib.get_close_matches(name, list(SPECS) + list(ROS_OWN_PARAMS), n=2, cutoff=0.6)
    hint = (" (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)" if close
            else f" (see `ros2 param list`, or {CONFIG_NAME} for every name)")
    return f"unknown parameter '{name}' ignored{hint}"


def load_defaults(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Default values of every parameter, read from ``emotion.yaml`` (see :func:`config_file`)
    and validated; the file must list exactly the parameters of :data:`SPECS`, each with its
    exact type (a float written with a '.')."""
    path = Path(path) if path is not None else config_file()
    values = read_params_file(path)
    missing = [n for n in SPECS if n not in values]
    if missing:
        raise ConfigError(f"{path} lacks parameter(s) {', '.join(missing)}")
    for name, value in values.items():
        spec = SPECS.get(name)
        if spec is not None and spec.type is float and not isinstance(value, float):
            raise ConfigError(
                f"{path}: {name}: {value!r} must be written as a float (e.g. {value}.0) "
                "so ROS types it as double"
            )
    try:
        return validate(values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


_DEFAULTS: dict[str, Any] = {}


def default(name: str) -> Any:
    """The default of parameter ``name`` (``emotion.yaml``, read once per process)."""
    if not _DEFAULTS:
        _DEFAULTS.update(load_defaults())
    return _DEFAULTS[name]


def or_default(value: Any, name: str) -> Any:
    """``value``, or the default of parameter ``name`` when it is None: the core's
    constructors take this for an argument left out, so each default is written once."""
    return default(name) if value is None else value


def validate(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check a (partial) dict of parameter values; returns it with types normalised (int ->
    float where a float is expected). Raises ConfigError for unknown names, wrong types and
    values outside the range or choices."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        spec = SPECS.get(name)
        if spec is None:
            raise ConfigError(f"unknown parameter {name!r}: known are {', '.join(SPECS)}")
        out[name] = spec.check(value)
    return out


def resolve(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """All parameters: the defaults with ``overrides`` (validated) applied."""
    return {**load_defaults(), **validate(overrides or {})}


def markdown_table(defaults: Mapping[str, Any] | None = None) -> str:
    """The README's parameter table, from :data:`SPECS` and the defaults
    (``python -m fer_ros.params`` prints it; a test keeps the README equal to it)."""
    defaults = load_defaults() if defaults is None else defaults
    rows = ["| parameter | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, spec in SPECS.items():
        value = defaults[name]
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        extra = f" ({spec.constraints()})" if spec.constraints() else ""
        rows.append(f"| `{name}` | {spec.ros_type} | `{shown}` | {spec.description}{extra} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
