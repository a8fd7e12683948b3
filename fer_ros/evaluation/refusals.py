"""Why a frame got no answer: the node's own refusal message, found with the node's own code.

A frame the node refuses (an unsupported encoding, a size that does not fit its data, a JPEG
that does not decode) is run through the same conversion the node applies
(``fer_ros.node.conversions``); its ImageError text is the reason the node logs as
"skipping a bad image: <reason>". Frames that convert fine but got no answer were replaced by
a newer frame while the node was busy (latest frame wins), or lost in transport.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Iterable

from ..bag.safe_yaml import short

NOT_REFUSED = "not refused: a newer frame replaced it while the node was busy, or it was lost"
_LOGGED = re.compile(r"skipping a bad image: (.*)$")


def refusal_reason(msgtype: str, data: bytes) -> str | None:
    """The node's refusal message for one serialised image, or None if it would accept it."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CompressedImage, Image

    from ..core.errors import ImageError
    from ..node import conversions

    compressed = msgtype.endswith("CompressedImage")
    try:
        msg = deserialize_message(bytes(data), CompressedImage if compressed else Image)
    except Exception as exc:  # malformed CDR
        return f"malformed message: {short(exc, 80)}"
    try:
        if compressed:
            conversions.compressed_to_bgr(msg)
        else:
            conversions.image_to_bgr(msg)
    except ImageError as exc:
        return short(exc, 200)
    except Exception as exc:  # what the node logs as "error while processing a frame"
        return f"{type(exc).__name__}: {short(exc, 160)}"
    return None


def count_reasons(msgtype: str, frames: Iterable[bytes]) -> Counter[str]:
    """Unanswered frames counted per reason (NOT_REFUSED for frames the node accepts)."""
    counts: Counter[str] = Counter()
    for data in frames:
        counts[refusal_reason(msgtype, data) or NOT_REFUSED] += 1
    return counts


def logged_refusals(log_path: Path | None) -> list[str]:
    """The distinct refusal messages in the node's log, in order of appearance."""
    if log_path is None or not log_path.is_file():
        return []
    seen: dict[str, None] = {}
    with log_path.open(errors="replace") as f:
        for line in f:
            match = _LOGGED.search(line.rstrip())
            if match:
                seen.setdefault(match.group(1).strip(), None)
    return list(seen)
