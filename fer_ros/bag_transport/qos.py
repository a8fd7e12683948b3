"""QoS between rclpy and the bag's recorded offers (rosbags ``Qos``): what the recorder stores and
the profile the player offers."""

from __future__ import annotations

from typing import Any

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from ..bag.play_qos import play_policies


def from_rclpy(profile: Any) -> Qos:
    """An rclpy QoSProfile (e.g. from get_publishers_info_by_topic) as a rosbags Qos."""
    def t(d: Any) -> QosTime:
        return QosTime(*divmod(int(getattr(d, "nanoseconds", 0)), 1_000_000_000))

    return Qos(QosHistory(int(profile.history)), int(profile.depth),
               QosReliability(int(profile.reliability)), QosDurability(int(profile.durability)),
               t(profile.deadline), t(profile.lifespan), QosLiveliness(int(profile.liveliness)),
               t(profile.liveliness_lease_duration), bool(profile.avoid_ros_namespace_conventions))


def play_profile(profiles: list[Qos], override: str | None = None) -> QoSProfile:
    """The rclpy QoSProfile (depth 10) to play a topic with: ``bag.play_qos.play_policies``."""
    reliability, durability = play_policies(profiles, override)
    return QoSProfile(depth=10, reliability=ReliabilityPolicy[reliability.upper()],
                      durability=DurabilityPolicy[durability.upper()])
