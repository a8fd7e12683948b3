"""``--help`` for the ROS console scripts (emotion_node, image_source, result_sink).

A ROS node takes its settings as ROS parameters (``--ros-args -p name:=value``), which rclpy
parses, and passes every other argument through unread; so ``result_sink --help`` used to start
the node. :func:`wants_help` looks only at the arguments before ``--ros-args`` (after it, the
words belong to ROS), and :func:`help_text` lists the node's parameters with type, default and
meaning, from the same tables the nodes declare them from. ROS-free, so help needs no rclpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

HELP_FLAGS = ("-h", "--help")
_ROS_TYPES = {bool: "bool", int: "integer", float: "double", str: "string"}


@dataclass(frozen=True)
class ParamLine:
    """One parameter as help shows it."""

    name: str
    default: Any
    description: str

    @property
    def ros_type(self) -> str:
        """The ROS parameter type name of the default ("bool", "integer", ...)."""
        return _ROS_TYPES.get(type(self.default), type(self.default).__name__)

    def shown_default(self) -> str:
        """The default as it is written after ``:=`` ("true", "''", "30.0")."""
        if isinstance(self.default, bool):
            return str(self.default).lower()
        if self.default == "":
            return "''"
        return str(self.default)


def wants_help(argv: Sequence[str]) -> bool:
    """True when ``-h``/``--help`` comes before ``--ros-args`` (argv without the program name)."""
    for arg in argv:
        if arg == "--ros-args":
            return False
        if arg in HELP_FLAGS:
            return True
    return False


def lines_from_table(table: dict[str, tuple[Any, str]]) -> list[ParamLine]:
    """ParamLines from a node's ``{name: (default, description)}`` table."""
    return [ParamLine(name, default, text) for name, (default, text) in table.items()]


def help_text(prog: str, summary: str, params: Iterable[ParamLine], example: str) -> str:
    """The help of one node: usage line, what it does, its parameters, an example."""
    out = [f"usage: {prog} [-h] [--ros-args [-p NAME:=VALUE ...] [--params-file FILE] "
           "[-r FROM:=TO ...]]", "", summary.strip(), "", "ROS parameters (-p NAME:=VALUE):"]
    for p in params:
        out.append(f"  {p.name} ({p.ros_type}, default {p.shown_default()})")
        out.append(f"      {p.description}")
    out += ["", f"example: {example}"]
    return "\n".join(out) + "\n"
