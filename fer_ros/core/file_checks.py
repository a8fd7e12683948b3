"""Why a path cannot be opened as a regular file, in a few words (or None when it can)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

NAME_MAX = 255  # longest path component on Linux file systems (bytes)

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_problem(path: str | os.PathLike[str]) -> str | None:
    """None when ``path`` is a readable regular file (after symlinks); otherwise what is wrong:
    "no such file", "is a directory, not a regular file" (FIFO, device, socket likewise),
    "a path component is longer than 255 characters", "permission denied", ...

    Never opens the file, so a FIFO or device cannot block the caller."""
    path = Path(path)
    long = [part for part in path.parts if len(os.fsencode(part)) > NAME_MAX]
    if long:
        return (f"a path component is longer than {NAME_MAX} characters "
                f"({len(os.fsencode(long[0]))}: {long[0][:40]}...)")
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return "no such file"
        if exc.errno == errno.ENOTDIR:
            return "no such file (a parent is not a directory)"
        return (exc.strerror or str(exc)).lower()
    for test, kind in _KINDS:
        if test(st.st_mode):
            return f"is {kind}, not a regular file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def require_file(path: str | os.PathLike[str], what: str, hint: str = "") -> Path:
    """``path`` if it is a readable regular file, else a one-line ModelError naming ``what``
    (``hint``, e.g. what to run, is added when the file does not exist)."""
    from .errors import ModelError  # local: errors stays a leaf module

    path = Path(path)
    problem = file_problem(path)
    if problem == "no such file":
        raise ModelError(f"{what} not found: {path}{hint}")
    if problem is not None:
        raise ModelError(f"{what} {path}: {problem}")
    return path
