"""How a recorded topic plays back, as ``ros2 bag play`` decides it, without rclpy.

rosbag2's ``adapt_offer_to_recorded_offers``: the recorded offer when all offers agree in what
affects matching, else reliable/volatile. ``fer-bag info`` prints it on a machine with no ROS;
``bag_transport.qos.play_profile`` turns it into the rclpy profile ``fer-bag play`` offers.
"""

from __future__ import annotations

from rosbags.interfaces import Qos

# rosbags' (and rmw's) enum values -> rclpy's policy names, lower case
RELIABILITY = {1: "reliable", 2: "best_effort"}
DURABILITY = {1: "transient_local", 2: "volatile"}


def play_policies(profiles: list[Qos], override: str | None = None) -> tuple[str, str]:
    """(reliability, durability) to play a topic recorded with ``profiles``; ``override``
    "reliable" / "best_effort" replaces the reliability. System-default policies in a
    recording count as the fallback's."""
    reliability, durability = "reliable", "volatile"
    keys = {(q.reliability, q.durability, q.deadline, q.liveliness, q.liveliness_lease_duration)
            for q in profiles}
    if len(keys) == 1:
        reliability = RELIABILITY.get(profiles[0].reliability.value, reliability)
        durability = DURABILITY.get(profiles[0].durability.value, durability)
    if override:
        if override not in RELIABILITY.values():
            raise ValueError(f"unknown reliability {override!r}: use reliable or best_effort")
        reliability = override
    return reliability, durability
