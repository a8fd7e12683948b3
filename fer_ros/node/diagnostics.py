"""The node's health as a diagnostic_msgs/DiagnosticStatus (levels from parameter thresholds)."""

from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue


def diagnostic_level(state: str, snap: dict[str, float], params: dict[str, Any],
                     last_error: str) -> tuple[bytes, str]:
    """(level, message): ERROR on processing errors, WARN on slow/absent input, else OK."""
    if last_error:
        return DiagnosticStatus.ERROR, f"processing error: {last_error}"
    if state != "active":
        return DiagnosticStatus.WARN, f"node is {state}"
    min_hz = params["diagnostics_warn_input_hz_min"]
    if min_hz > 0 and snap["input_rate_hz"] < min_hz:
        return DiagnosticStatus.WARN, f"input rate {snap['input_rate_hz']:.1f} Hz < {min_hz:g} Hz"
    max_ms = params["diagnostics_warn_processing_ms"]
    if max_ms > 0 and snap["frames_processed"] and snap["processing_ms_p50"] > max_ms:
        return DiagnosticStatus.WARN, f"processing {snap['processing_ms_p50']:.0f} ms > {max_ms:g} ms"
    return DiagnosticStatus.OK, "ok"


def diagnostic_status(name: str, state: str, snap: dict[str, float], params: dict[str, Any],
                      last_error: str = "") -> DiagnosticStatus:
    """One status named after the node; every value's unit is in its key."""
    level, message = diagnostic_level(state, snap, params, last_error)
    values = [KeyValue(key="state", value=state)]
    for key, value in snap.items():
        text = f"{value:.2f}" if isinstance(value, float) else str(value)
        values.append(KeyValue(key=key, value=text))
    return DiagnosticStatus(level=level, name=f"fer_ros: {name}", message=message,
                            hardware_id="fer_ros", values=values)
