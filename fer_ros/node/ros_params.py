"""Declare the fer_ros parameters (fer_ros/params.py + config/emotion.yaml) on an rclpy node."""

from __future__ import annotations

from typing import AbstractSet, Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rcl_interfaces.msg import ParameterType

from fer_ros.node.process import rclpy_private
from fer_ros.params import SPECS, ParamSpec

_TYPES = {"bool": ParameterType.PARAMETER_BOOL, "integer": ParameterType.PARAMETER_INTEGER,
          "double": ParameterType.PARAMETER_DOUBLE, "string": ParameterType.PARAMETER_STRING}


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """A ParameterDescriptor with description, type and range (enforced by rclpy)."""
    f = spec.descriptor_fields()
    d = ParameterDescriptor(name=f["name"], type=_TYPES[f["type"]], description=f["description"],
                            additional_constraints=f["additional_constraints"])
    if f["floating_point_range"]:
        lo, hi, step = f["floating_point_range"]
        d.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=step)]
    if f["integer_range"]:
        lo, hi, step = f["integer_range"]
        d.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=step)]
    return d


def check_overrides(node) -> None:
    """Check the values given with ``--ros-args -p``/``--params-file`` as rclpy will (exact
    ROS types, ranges, choices) and raise ConfigError in one line naming the parameter and
    what it accepts (rclpy's own refusal reads "Invalid parameter value (2.0) for parameter.
    Reason: ...")."""
    overrides = rclpy_private.parameter_overrides(node)
    for name, spec in SPECS.items():
        if name in overrides:
            spec.check(overrides[name].value, exact_type=True)


def declare_all(node, defaults: dict[str, Any]) -> None:
    """Declare every parameter of SPECS with its default from the YAML file (ConfigError for
    a refused override, see :func:`check_overrides`)."""
    check_overrides(node)
    node.declare_parameters("", [(name, defaults[name], descriptor(spec))
                                 for name, spec in SPECS.items()])


def current_values(node) -> dict[str, Any]:
    """The node's current value of every fer_ros parameter."""
    return {name: node.get_parameter(name).value for name in SPECS}


def deferred_change_message(old: dict[str, Any], new: dict[str, Any],
                            live: AbstractSet[str]) -> str:
    """The log line for parameters set to a new value that only apply at the next configure
    ("" when none of them changed)."""
    later = sorted(n for n, v in new.items() if n not in live and old.get(n) != v)
    if not later:
        return ""
    return f"{', '.join(later)} {'takes' if len(later) == 1 else 'take'} effect at the next configure"
