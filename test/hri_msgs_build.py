"""Builds the test-only hri_msgs (test/interfaces/hri_msgs) once, with plain CMake against the
venv's ROS wheels as scripts/build_msgs.sh builds fer_msgs, into build/test_hri_msgs/<key>/
(ignored by git), and gives the environment a child process needs to import it. The key
hashes the package's files and the interpreter, so a second session reuses the build (about
a minute on 2 busy cores the first time, nothing afterwards). conftest.py starts the build
when the session collects test_hri_output.py, at the lowest CPU priority, so that it runs
in the CPU time other tests leave idle instead of adding its minute to the run."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "test" / "interfaces" / "hri_msgs"
_BUILDING = threading.Lock()  # one build at a time; a second caller waits for the first
# the niceness of the build's next step and the process group of the step running now
_RUNNING: dict[str, int | None] = {"nice": 0, "group": None}


def _key() -> str:
    digest = hashlib.sha256(f"{sys.prefix}|{sys.version}".encode())
    for path in sorted(SOURCE.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(SOURCE).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def site_packages(prefix: Path) -> Path:
    return prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def _root() -> Path:
    return REPO / "build" / "test_hri_msgs" / _key()


def build_hri_msgs(nice: int = 0) -> Path:
    """The install prefix holding hri_msgs (built now unless a finished build is cached, or
    waiting for the build under way); RuntimeError with the end of the failing step's log.
    ``nice``: the build's CPU niceness (0 to 19); a caller waiting for a build started
    nicer raises it to ``nice`` (where allowed: lowering niceness needs root)."""
    if not _BUILDING.acquire(blocking=False):
        _RUNNING["nice"] = min(_RUNNING["nice"] or 0, nice)
        group = _RUNNING["group"]
        if group is not None:
            try:
                os.setpriority(os.PRIO_PGRP, group, nice)
            except OSError:  # ended meanwhile, or not allowed
                pass
        _BUILDING.acquire()
    try:
        _RUNNING["nice"] = nice
        return _build(_root())
    finally:
        _BUILDING.release()


def _build(root: Path) -> Path:
    prefix, build, done = root / "install", root / "build", root / "done"
    if done.is_file():
        return prefix
    shutil.rmtree(root, ignore_errors=True)
    build.mkdir(parents=True)
    venv = Path(sys.prefix)
    env = dict(os.environ, AMENT_PREFIX_PATH=os.pathsep.join(
        filter(None, [str(venv), os.environ.get("AMENT_PREFIX_PATH")])),
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    steps = [
        ["cmake", "-S", str(SOURCE), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
         f"-DCMAKE_PREFIX_PATH={venv}", f"-DCMAKE_INSTALL_PREFIX={prefix}",
         f"-DPython3_EXECUTABLE={venv / 'bin' / 'python3'}", "-DBUILD_TESTING=OFF"],
        ["cmake", "--build", str(build), "-j", str(os.cpu_count() or 1)],
        ["cmake", "--install", str(build)],
    ]
    for step in steps:
        proc = subprocess.Popen(["nice", "-n", str(_RUNNING["nice"]), *step], env=env,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                process_group=0)
        _RUNNING["group"] = proc.pid
        log, _ = proc.communicate()
        _RUNNING["group"] = None
        if proc.returncode != 0:
            raise RuntimeError(f"building the test hri_msgs failed at {' '.join(step[:2])}:\n"
                               + log[-3000:])
    done.write_text("ok\n")
    return prefix


def start_background_build() -> threading.Thread | None:
    """Starts :func:`build_hri_msgs` at niceness 19 on a daemon thread, unless hri_msgs is
    importable (the robot's own) or already built; a failure is left to the caller's own
    :func:`build_hri_msgs`, which tries again and reports it."""
    if importlib.util.find_spec("hri_msgs") is not None or (_root() / "done").is_file():
        return None

    def build() -> None:
        try:
            build_hri_msgs(nice=19)
        except (OSError, RuntimeError):
            pass

    thread = threading.Thread(target=build, name="hri_msgs build", daemon=True)
    thread.start()
    return thread


def env_with_hri_msgs(env: dict[str, str], prefix: Path) -> dict[str, str]:
    """``env`` plus what a process needs to import hri_msgs from ``prefix`` and find its
    type support libraries (as sourcing the prefix's setup would)."""
    def prepend(name: str, value: Path) -> str:
        return os.pathsep.join(filter(None, [str(value), env.get(name)]))

    return {**env, "PYTHONPATH": prepend("PYTHONPATH", site_packages(prefix)),
            "LD_LIBRARY_PATH": prepend("LD_LIBRARY_PATH", prefix / "lib"),
            "AMENT_PREFIX_PATH": prepend("AMENT_PREFIX_PATH", prefix)}
