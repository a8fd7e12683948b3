"""QoS between rclpy and the bag's recorded offers (rosbags ``Qos``): what the recorder stores and
the profile the player offers."""

from __future__ import annotations

from typing import Any

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime


def from_rclpy(profile: Any) -> Qos:
    """An rclpy QoSProfile (e.g. from get_publishers_info_by_topic) as a rosbags Qos."""
    def t(d: Any) -> QosTime:
        return QosTime(*divmod(int(getattr(d, "nanoseconds", 0)), 1_000_000_000))

    return Qos(QosHistory(int(profile.history)), int(profile.depth),
               QosReliability(int(profile.reliability)), QosDurability(int(profile.durability)),
               t(profile.deadline), t(profile.lifespan), QosLiveliness(int(profile.liveliness)),
               t(profile.liveliness_lease_duration), bool(profile.avoid_ros_namespace_conventions))


def play_profile(profiles: list[Qos], override: str | None = None) -> QoSProfile:
    """The rclpy QoSProfile to play a topic with, as rosbag2's ``adapt_offer_to_recorded_offers``:
    the recorded offer when all offers agree in what affects matching, else reliable/volatile
    (depth 10 either way); ``override`` "reliable" / "best_effort" replaces the reliability."""
    profile = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
    keys = {(q.reliability, q.durability, q.deadline, q.liveliness, q.liveliness_lease_duration)
            for q in profiles}
    if len(keys) == 1:
        q = profiles[0]
        if q.reliability.value in (1, 2):
            profile.reliability = ReliabilityPolicy(q.reliability.value)
        if q.durability.value in (1, 2):
            profile.durability = DurabilityPolicy(q.durability.value)
    if override:
        profile.reliability = (ReliabilityPolicy.RELIABLE if override == "reliable"
                               else ReliabilityPolicy.BEST_EFFORT)
    return profile
