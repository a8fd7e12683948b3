"""Every use of rclpy's private API, in one module, each with why no public call does the job.

Written against the pinned rclpy (Jazzy, 7.1.x). Each function degrades to something safe if
rclpy renames what it reaches for, so an rclpy upgrade can cost a feature, not the node.
"""

from __future__ import annotations

import gc
from typing import Any


def parameter_overrides(node: Any) -> dict[str, Any]:
    """The ``-p`` / ``--params-file`` values given to ``node``, before anything is declared.

    rclpy applies them only inside ``declare_parameter`` (a wrong type raises there with
    rclpy's own wording) and silently ignores names never declared; to refuse a bad value in
    one line of ours and to warn about a misspelt name we must see them first. Empty if
    rclpy stops keeping them under this name."""
    return getattr(node, "_parameter_overrides", {})


def rcl_error() -> type[BaseException]:
    """rclpy's ``RCLError``: raised by the executor when rcl fails while a signal is being
    handled. rclpy exports it only from its C extension."""
    try:
        from rclpy.impl.implementation_singleton import rclpy_implementation
    except ImportError:
        return RuntimeError  # RCLError derives from it
    return rclpy_implementation.RCLError


def release_state_machine(node: Any) -> None:
    """After ``destroy_node()``: rclpy's LifecycleNode leaves its state machine, which keeps
    the DDS participant (and its shared-memory segment in /dev/shm) alive until Python's
    teardown, which the node's fast exit skips. Destroy it (or fall back to a full garbage
    collection, slow with the models loaded, if rclpy names it differently)."""
    state_machine = getattr(node, "_state_machine", None)
    if state_machine is not None and hasattr(state_machine, "destroy_when_not_in_use"):
        state_machine.destroy_when_not_in_use()
    else:
        gc.collect()
