"""Test helper: with this folder on PYTHONPATH, the top-level modules named in
FER_TEST_HIDE_MODULES (comma-separated) cannot be imported, as on a ROS install where rosdep
installed only what package.xml declares. A meta-path finder placed first raises the same
ModuleNotFoundError Python gives for a module that is not there."""

import os
import sys

_HIDDEN = frozenset(filter(None, os.environ.get("FER_TEST_HIDE_MODULES", "").split(",")))


class _Hide:
    """Refuses every module whose top-level package is hidden."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in _HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if _HIDDEN:
    sys.meta_path.insert(0, _Hide())
