"""Checks of the parameters ``fer-bag evaluate`` passes to the node it starts (``-p``,
``--params-file``, ``--compare``): a bad params file or a malformed ``-p`` is a BagError line
before any node is started; a misspelt parameter name is a warning naming the closest real
ones (the node itself would ignore it)."""

from __future__ import annotations

import sys

from ..core.errors import ConfigError
from ..params import SPECS, check_params_file, is_ros_own, params_file_names, unknown_parameter_warning
from ..bag.errors import BagError

PROG = "fer-bag evaluate"


def check_node_params(params: list[str], params_files: list[str]) -> list[str]:
    """Raises BagError for a ``-p`` not written NAME:=VALUE or a params file the node could not
    read; returns (and prints to stderr) one warning per unknown parameter name."""
    names: list[str] = []
    for item in params:
        name, sep, _ = item.partition(":=")
        if not sep or not name.strip():
            raise BagError(f"-p {item!r}: expected NAME:=VALUE (e.g. -p detector:=yunet)")
        names.append(name.strip())
    for path in params_files:
        try:
            names += params_file_names(check_params_file(path))
        except ConfigError as exc:
            raise BagError(str(exc)) from None
    warnings = [unknown_parameter_warning(n) for n in dict.fromkeys(names)
                if n not in SPECS and not is_ros_own(n)]
    for text in warnings:
        print(f"{PROG}: warning: {text}", file=sys.stderr)
    return warnings
