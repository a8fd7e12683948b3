"""Errors of ``fer-bag``: each becomes one line on stderr and an exit code."""

from __future__ import annotations


class BagError(Exception):
    """Bad input (bag path, topic, message type, option): exit code 2."""

    exit_code = 2


class BagRunError(BagError):
    """A run that could not finish (node died, nothing discovered in time): exit code 1."""

    exit_code = 1
