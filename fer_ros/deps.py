"""The Python packages fer_ros uses: which it needs, which are optional and what each one
enables, the oldest version it accepts, and what installs it on a ROS install (rosdep key, or
pip where rosdistro has no key). ROS-free; docs/ros-install.md and package.xml follow this table
(test/test_deps.py keeps them equal).

Why a table: a ``rosdep install`` + ``colcon build`` user gets the rosdep keys of package.xml
and nothing else, so every feature that needs a pip-only package must say so in one line
instead of a traceback, and the defaults must work without them (``ssd_runtime`` ``auto``).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType

from .core.errors import ConfigError


@dataclass(frozen=True)
class Dependency:
    """One Python package: import name, pip name, oldest accepted version, rosdep key ("" when
    rosdistro has none), what needs it, and whether fer_ros cannot start without it."""

    module: str
    dist: str
    minimum: str
    rosdep: str
    needed_for: str
    required: bool = False

    @property
    def pip_requirement(self) -> str:
        """``name>=minimum``: what a pip line installs."""
        return f"{self.dist}>={self.minimum}"


# minimum versions: the oldest release whose API fer_ros uses (see docs/ros-install.md); the
# versions tested are the pins of requirements/python.txt
DEPENDENCIES: tuple[Dependency, ...] = (
    Dependency("numpy", "numpy", "1.24", "python3-numpy", "every part", required=True),
    Dependency("cv2", "opencv-python", "4.6", "python3-opencv",
               "image decoding and face detection", required=True),
    Dependency("torch", "torch", "2.1", "python3-torch", "the expression classifier",
               required=True),
    Dependency("yaml", "pyyaml", "6.0", "python3-yaml", "parameters files", required=True),
    Dependency("onnxruntime", "onnxruntime", "1.16", "python3-onnxruntime-pip",
               "ssd_runtime onnxruntime"),
    Dependency("openvino", "openvino", "2023.1", "", "ssd_runtime openvino (fastest on x86 CPUs)"),
    Dependency("onnx", "onnx", "1.14", "", "fer-models making the SSD's ONNX graph"),
    Dependency("rosbags", "rosbags", "0.11", "python3-rosbags-pip", "fer-bag"),
    Dependency("mcap", "mcap", "1.1", "", "fer-bag writing .mcap bags"),
    Dependency("zstandard", "zstandard", "0.21", "", "fer-bag reading zstd-compressed bags"),
    Dependency("matplotlib", "matplotlib", "3.6", "python3-matplotlib", "fer-bag report plots"),
)
BY_MODULE = {d.module: d for d in DEPENDENCIES}


def pip_only() -> list[Dependency]:
    """The dependencies rosdistro has no key for: the documented pip line installs these."""
    return [d for d in DEPENDENCIES if not d.rosdep]


def pip_line() -> str:
    """The one-line pip install of every pip-only package (docs/ros-install.md shows it)."""
    return "pip install " + " ".join(f"'{d.pip_requirement}'" for d in pip_only())


def parse_version(text: str) -> tuple[int, ...]:
    """The leading numeric release of a version string: '2.13.0+cpu' -> (2, 13, 0),
    '2026.4.1-20345-abc' -> (2026, 4, 1), '4.6.0' -> (4, 6, 0); () when there is none."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def version_of(dep: Dependency, module: ModuleType | None = None) -> str:
    """The installed version: the module's ``__version__`` (also right for Debian packages,
    which carry no pip metadata), else the pip distribution's; "" when unknown."""
    version = getattr(module, "__version__", "") if module is not None else ""
    if not isinstance(version, str) or not version:
        try:
            version = metadata.version(dep.dist)
        except metadata.PackageNotFoundError:
            version = ""
    return version


def too_old(dep: Dependency, version: str) -> bool:
    """True when ``version`` is known and older than ``dep.minimum``."""
    have = parse_version(version)
    return bool(have) and have < parse_version(dep.minimum)


def install_hint(dep: Dependency) -> str:
    """How to install it, in a few words."""
    pip = f"pip install '{dep.pip_requirement}'"
    if dep.rosdep and not dep.rosdep.endswith("-pip"):
        return f"apt/rosdep key {dep.rosdep}, or {pip}"
    return pip


def load_optional(name: str) -> tuple[ModuleType | None, str]:
    """(module, "") when the optional package imports and is new enough, else (None, why):
    "is not installed" or "2022.1 is older than the minimum 2023.1"."""
    dep = BY_MODULE[name]
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None, "is not installed"
    except Exception as exc:  # a broken install (missing shared library, ...)
        return None, f"cannot be imported ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})"
    version = version_of(dep, module)
    if too_old(dep, version):
        return None, f"{version} is older than the minimum {dep.minimum}"
    return module, ""


def require_optional(name: str, setting: str, instead: str) -> ModuleType:
    """The optional package ``name`` that ``setting`` needs, or a one-line ConfigError: why it
    cannot be used, how to install it, and ``instead`` (what to use otherwise)."""
    module, why = load_optional(name)
    if module is None:
        raise ConfigError(f"{setting}: {name} {why} ({install_hint(BY_MODULE[name])}); {instead}")
    return module


def check_required() -> None:
    """Raise ConfigError (one line) when a required package is older than its minimum; the
    node and the CLIs call this at start. Each module is imported (they all are at start)."""
    problems = []
    for dep in DEPENDENCIES:
        if not dep.required:
            continue
        module = importlib.import_module(dep.module)
        version = version_of(dep, module)
        if too_old(dep, version):
            problems.append(f"{dep.dist} {version} is older than the minimum {dep.minimum} "
                            f"({install_hint(dep)})")
    if problems:
        raise ConfigError("; ".join(problems))


def missing_module_message(exc: ImportError) -> str | None:
    """The one-line message for an optional package that is missing (a ModuleNotFoundError
    raised from deep inside a command), or None when ``exc`` is about something else."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    dep = BY_MODULE.get(name)
    if dep is None or dep.required:
        return None
    return (f"{dep.needed_for} needs the Python package {dep.dist} (>= {dep.minimum}), "
            f"which is not installed: {install_hint(dep)}")
