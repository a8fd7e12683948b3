"""The node's health as a diagnostic_msgs/DiagnosticStatus (levels from parameter thresholds)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from fer_ros.node.frame_stats import REFUSAL_WINDOW_S

MIN_REFUSED = 3  # "most frames refused" needs at least this many refusals in the window


def diagnostic_level(state: str, snap: dict[str, float], params: dict[str, Any],
                     last_error: str, refusal_reasons: Sequence[tuple[str, int]] = ()
                     ) -> tuple[bytes, str]:
    """(level, message), first match wins: ERROR on a processing error or when a frame has
    waited unanswered longer than ``diagnostics_stall_s``; WARN when not active, when most
    frames checked in the last few seconds were refused (naming the most frequent reason), on
    slow or absent input, or on slow processing; else OK."""
    if last_error:
        return DiagnosticStatus.ERROR, f"processing error: {last_error}"
    if state != "active":
        return DiagnosticStatus.WARN, f"node is {state}"
    stall_s = params["diagnostics_stall_s"]
    if stall_s > 0 and snap.get("unanswered_s", 0.0) > stall_s:
        return (DiagnosticStatus.ERROR,
                f"stalled: frames arrive but none was processed for {snap['unanswered_s']:.1f} s "
                f"(> diagnostics_stall_s {stall_s:g} s)")
    refused, checked = int(snap.get("recent_frames_refused", 0)), int(snap.get("recent_frames_checked", 0))
    if refused >= MIN_REFUSED and refused * 2 > checked:
        message = f"{refused} of {checked} frames refused in the last {REFUSAL_WINDOW_S:g} s"
        if refusal_reasons:
            reason, count = refusal_reasons[0]
            message += f": {reason}" + (f" ({count} frames)" if count != refused else "")
            if len(refusal_reasons) > 1:
                message += f"; {len(refusal_reasons) - 1} other reason(s)"
        return DiagnosticStatus.WARN, message
    min_hz = params["diagnostics_warn_input_hz_min"]
    if min_hz > 0 and snap["input_rate_hz"] < min_hz:
        return DiagnosticStatus.WARN, f"input rate {snap['input_rate_hz']:.1f} Hz < {min_hz:g} Hz"
    max_ms = params["diagnostics_warn_processing_ms"]
    if max_ms > 0 and snap["frames_processed"] and snap["processing_ms_p50"] > max_ms:
        return DiagnosticStatus.WARN, f"processing {snap['processing_ms_p50']:.0f} ms > {max_ms:g} ms"
    return DiagnosticStatus.OK, "ok"


def diagnostic_status(name: str, state: str, snap: dict[str, float], params: dict[str, Any],
                      last_error: str = "", refusal_reasons: Sequence[tuple[str, int]] = ()
                      ) -> DiagnosticStatus:
    """One status named after the node; every value's unit is in its key."""
    level, message = diagnostic_level(state, snap, params, last_error, refusal_reasons)
    values = [KeyValue(key="state", value=state)]
    for key, value in snap.items():
        text = f"{value:.2f}" if isinstance(value, float) else str(value)
        values.append(KeyValue(key=key, value=text))
    return DiagnosticStatus(level=level, name=f"fer_ros: {name}", message=message,
                            hardware_id="fer_ros", values=values)
