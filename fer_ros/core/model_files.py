"""Manifest-driven, sha256-checked look-up of model files (ROS-free, never uses the network).

models/manifest.json lists every model file: its path under models/, sha256, size, kind and
public origin URLs. resolve_model(name) finds a file by searching, in order:

1. $FER_MODEL_DIR, if set;
2. the package's models/ directory: <repo>/models in a source tree, <prefix>/share/fer_ros/models
   when installed (sys.prefix, then the ament index when ament_index_python is importable);
3. the read-only mirror $FER_MODEL_MIRROR (default: ../shared/models beside the repo root, when
   it exists). A file found only there is first copied into the first directory of 1./2.

Every file is sha256-checked against the manifest (checks are cached per path, size and mtime).
Missing or corrupt files raise ModelError with a one-line message that says what to do.
Downloading is done only by `fer-models fetch` (fetch_model), never at run time. An entry with
`derived_from` (e.g. the SSD's ONNX form) is never downloaded: `fer-models fetch` makes it from
those entries' files with the function `made_by` names, then checks its sha256 like any other.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import ModelError
from .file_checks import file_problem

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "fer_ros.models/1"
DEFAULT_CLASSIFIER = "fer7"
MAKE_SETUP_HINT = "run `make setup` (or `fer-models fetch`)"
INSTALLED_HINT = "run `ros2 run fer_ros fer-models fetch` (or `fer-models fetch`)"

# Kind of a file added with make_entry() when none is given, by file suffix.
KIND_BY_SUFFIX = {
    ".pt": "classifier",
    ".pb": "face-detector-ssd-weights",
    ".pbtxt": "face-detector-ssd-config",
    ".onnx": "face-detector-yunet",
}


@dataclass(frozen=True)
class ModelEntry:
    """One file of the manifest. `path` is relative to the models directory (POSIX form)."""

    name: str
    path: str
    sha256: str
    size: int
    kind: str
    urls: tuple[str, ...] = field(default_factory=tuple)
    description: str = ""
    derived_from: tuple[str, ...] = field(default_factory=tuple)  # entry names, in argument order
    made_by: str = ""  # "module:function" called as function(*source_paths, out_path)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["urls"] = list(self.urls)
        if not self.derived_from:
            del data["derived_from"], data["made_by"]
        else:
            data["derived_from"] = list(self.derived_from)
        return data

    @staticmethod
    def from_json(data: dict[str, object], source: Path) -> "ModelEntry":
        try:
            return ModelEntry(
                name=str(data["name"]), path=str(data["path"]), sha256=str(data["sha256"]).lower(),
                size=int(data["size"]), kind=str(data["kind"]),
                urls=tuple(str(u) for u in data.get("urls", [])),
                description=str(data.get("description", "")),
                derived_from=tuple(str(d) for d in data.get("derived_from", [])),
                made_by=str(data.get("made_by", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"bad entry {data!r} in {source}: {exc}; fix or re-create it with "
                             "`fer-models add`") from None


# ----------------------------------------------------------------------------- locations

def repo_root() -> Path:
    """The directory that holds models/ in a source checkout (may not exist when installed)."""
    return Path(__file__).resolve().parents[2]


def setup_hint(prefix: Path | None = None) -> str:
    """How to get missing model files: `make setup` when running in the venv that `make setup`
    made for this checkout (it leaves ``.fer-setup/`` there), else (colcon or another install)
    `ros2 run fer_ros fer-models fetch`."""
    prefix = Path(sys.prefix) if prefix is None else prefix
    if (prefix / ".fer-setup").is_dir() and (repo_root() / "Makefile").is_file():
        return MAKE_SETUP_HINT
    return INSTALLED_HINT


def _installed_model_dirs() -> list[Path]:
    dirs = [Path(sys.prefix) / "share" / "fer_ros" / "models"]
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory("fer_ros")) / "models")
    except Exception:  # not importable, AMENT_PREFIX_PATH unset, or fer_ros not in the index
        pass
    return dirs


def search_dirs() -> list[Path]:
    """Directories searched for model files and manifests, in order (mirror excluded)."""
    dirs: list[Path] = []
    env_dir = os.environ.get("FER_MODEL_DIR")
    if env_dir:
        dirs.append(Path(env_dir).expanduser())
    source_dir = repo_root() / "models"
    if (source_dir / MANIFEST_NAME).is_file():
        dirs.append(source_dir)
    for path in _installed_model_dirs():
        if path.is_dir() and path.resolve() not in {d.resolve() for d in dirs}:
            dirs.append(path)
    return dirs


def mirror_dir() -> Path | None:
    """$FER_MODEL_MIRROR, else ../shared/models beside the repo root if it exists, else None."""
    env = os.environ.get("FER_MODEL_MIRROR")
    if env:
        return Path(env).expanduser()
    default = repo_root().parent / "shared" / "models"
    return default if default.is_dir() else None


# ----------------------------------------------------------------------------- manifest

def read_manifest(path: Path) -> list[ModelEntry]:
    """Entries of one manifest file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read model manifest {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ModelError(f"model manifest {path} has no \"models\" list; restore it from git")
    return [ModelEntry.from_json(item, path) for item in data["models"]]


def write_manifest(path: Path, entries: list[ModelEntry]) -> None:
    """Writes entries (sorted by path) to a manifest file, atomically."""
    data = {"format": MANIFEST_FORMAT,
            "models": [e.to_json() for e in sorted(entries, key=lambda e: e.path)]}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def load_manifest(dirs: list[Path] | None = None) -> dict[str, ModelEntry]:
    """Entries of the manifests in `dirs` (default search_dirs()), keyed by name.

    An entry in an earlier directory wins over one with the same name or path in a later one.
    """
    dirs = search_dirs() if dirs is None else dirs
    entries: dict[str, ModelEntry] = {}
    paths: set[str] = set()
    found = False
    for directory in dirs:
        manifest = directory / MANIFEST_NAME
        if not manifest.is_file():
            continue
        found = True
        for entry in read_manifest(manifest):
            if entry.name not in entries and entry.path not in paths:
                entries[entry.name] = entry
                paths.add(entry.path)
    if not found:
        where = ", ".join(str(d) for d in dirs) or "(no model directory)"
        raise ModelError(f"no {MANIFEST_NAME} found in {where}; reinstall fer_ros or set "
                         "FER_MODEL_DIR to a directory with one")
    return entries


def find_entry(name: str, entries: dict[str, ModelEntry], kind: str | None = None) -> ModelEntry:
    """The entry called `name`, or whose path or unique file name is `name`; with `kind`
    (e.g. "classifier") only entries of that kind count, and only they are listed as known.

    E.g. "ssd_weights", "face_detector/opencv_face_detector_uint8.pb" and
    "opencv_face_detector_uint8.pb" all give the same entry; "fer7" and "fer7.pt" too.
    """
    if kind is not None:
        entries = {n: e for n, e in entries.items() if e.kind == kind}
    if name in entries:
        return entries[name]
    for entry in entries.values():
        if name == entry.path:
            return entry
    by_file = [e for e in entries.values() if Path(e.path).name == name]
    if len(by_file) == 1:
        return by_file[0]
    known = ", ".join(sorted(entries)) or "none"
    what = f"{kind} '{name}'" if kind else f"model '{name}'"
    extra = " or give the path to a .pt checkpoint" if kind == "classifier" else ""
    raise ModelError(f"unknown {what} (known: {known}); put the file under models/ and "
                     f"register it with `fer-models add models/<file>`{extra}")


# ----------------------------------------------------------------------------- hashing

_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """sha256 hex digest of a file, cached per (resolved path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _HASH_CACHE.get(key)
    if digest is None:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
        _HASH_CACHE[key] = digest
    return digest


def verify_file(path: Path, entry: ModelEntry) -> None:
    """Raises ModelError unless `path` has the manifest's sha256."""
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise ModelError(
            f"model file {path} is corrupt or outdated: sha256 {actual} (size {path.stat().st_size}) "
            f"but models/{MANIFEST_NAME} expects {entry.sha256} (size {entry.size}); "
            f"delete it and {setup_hint()} to restore it")


# ----------------------------------------------------------------------------- resolving

def _copy_verified(src: Path, dest: Path, entry: ModelEntry) -> Path:
    """Copies src to dest via a temporary file, checking the hash before the final rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".fer-", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(src, tmp)
        tmp.chmod(0o644)  # mkstemp creates 0600
        if sha256_file(tmp) != entry.sha256:
            verify_file(src, entry)  # raises, naming the mirror file
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def locate(entry: ModelEntry, dirs: list[Path], mirror: Path | None) -> tuple[Path, str] | None:
    """Finds and verifies `entry`; returns (path, where) with where "local" or "mirror", or None.

    A file found only in the mirror is copied into dirs[0] first (used in place if that fails).
    """
    for directory in dirs:
        candidate = directory / entry.path
        if candidate.is_file():
            verify_file(candidate, entry)
            return candidate, "local"
    if mirror is not None and (mirror / entry.path).is_file():
        source = mirror / entry.path
        if dirs:
            try:
                return _copy_verified(source, dirs[0] / entry.path, entry), "mirror"
            except OSError:
                pass  # read-only install: use the mirror file in place
        verify_file(source, entry)
        return source, "mirror"
    return None


def missing_error(entry: ModelEntry, dirs: list[Path], mirror: Path | None) -> ModelError:
    places = [str(d) for d in dirs] + ([f"mirror {mirror}"] if mirror is not None else [])
    odd = [f"{p} {file_problem(p)}" for p in [d / entry.path for d in dirs]
           + ([mirror / entry.path] if mirror is not None else []) if os.path.lexists(p)]
    return ModelError(f"model file '{entry.path}' ({entry.name}) not found in "
                      f"{', '.join(places) or 'any model directory'}"
                      + (f" ({'; '.join(odd)})" if odd else "") + f"; {setup_hint()} to get it")


_DEFAULT_MIRROR = Path("<default mirror>")


def resolve_model(name: str, *, dirs: list[Path] | None = None,
                  mirror: Path | None = _DEFAULT_MIRROR, kind: str | None = None) -> Path:
    """Path of a verified model file, by manifest name ("fer7", "ssd_weights") or path ("fer7.pt").

    `dirs` and `mirror` override search_dirs() / mirror_dir() (mirror=None: no mirror);
    `kind` restricts the look-up to entries of that kind (see :func:`find_entry`).
    """
    dirs = search_dirs() if dirs is None else dirs
    mirror_path = mirror_dir() if mirror is _DEFAULT_MIRROR else mirror
    entry = find_entry(name, load_manifest(dirs), kind)
    found = locate(entry, dirs, mirror_path)
    if found is None:
        raise missing_error(entry, dirs, mirror_path)
    return found[0]


# ----------------------------------------------------------------------------- fetch / add

def download(entry: ModelEntry, dest: Path, timeout: float = 60.0) -> Path:
    """Downloads `entry` from its URLs into dest (checked, atomic). Used only by `fer-models fetch`."""
    if not entry.urls:
        raise ModelError(f"model file '{entry.path}' is missing and the manifest has no URL for it; "
                         f"copy it to {dest} by hand")
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in entry.urls:
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, tmp.open("wb") as out:
                shutil.copyfileobj(response, out)
            actual = sha256_file(tmp)
            if actual != entry.sha256:
                errors.append(f"{url}: sha256 {actual}, expected {entry.sha256}")
                continue
            os.replace(tmp, dest)
            return dest
        except OSError as exc:  # URLError and HTTPError are OSErrors
            errors.append(f"{url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise ModelError(f"could not download '{entry.path}' ({'; '.join(errors)}); "
                     f"copy the file to {dest} by hand or set FER_MODEL_MIRROR to a directory holding it")


def derive(entry: ModelEntry, sources: list[Path], dest: Path) -> Path:
    """Makes a derived entry's file from its sources' files (checked, atomic)."""
    module_name, _, func_name = entry.made_by.partition(":")
    if not module_name.startswith("fer_ros.") or not func_name:
        raise ModelError(f"manifest entry {entry.name}: made_by {entry.made_by!r} must name a "
                         "fer_ros function as module:function")
    try:
        make = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"cannot make {entry.path}: {exc}") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        make(*[str(p) for p in sources], str(tmp))
        actual = sha256_file(tmp)
        if actual != entry.sha256:
            raise ModelError(f"{entry.path} made by {entry.made_by} has sha256 {actual}, the "
                             f"manifest expects {entry.sha256} (another onnx/OpenCV version?)")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def fetch_model(entry: ModelEntry, dirs: list[Path], mirror: Path | None,
                entries: dict[str, ModelEntry] | None = None) -> tuple[Path, str]:
    """Makes `entry` available: (path, "local" | "mirror" | "download" | "made")."""
    found = locate(entry, dirs, mirror)
    if found is not None:
        return found
    if not dirs:
        raise ModelError("no writable model directory: set FER_MODEL_DIR")
    if entry.derived_from:
        entries = entries if entries is not None else load_manifest(dirs)
        sources = [fetch_model(find_entry(n, entries), dirs, mirror, entries)[0]
                   for n in entry.derived_from]
        return derive(entry, sources, dirs[0] / entry.path), "made"
    return download(entry, dirs[0] / entry.path), "download"


def make_entry(file: Path, models_dir: Path, name: str | None = None, kind: str | None = None,
               urls: tuple[str, ...] = (), description: str = "") -> ModelEntry:
    """A manifest entry for `file` (which must lie under models_dir), with its sha256 and size."""
    file, models_dir = file.resolve(), models_dir.resolve()
    try:
        rel = file.relative_to(models_dir).as_posix()
    except ValueError:
        raise ModelError(f"{file} is not under {models_dir}; move it there first") from None
    if not file.is_file():
        raise ModelError(f"{file} does not exist")
    kind = kind or KIND_BY_SUFFIX.get(file.suffix)
    if kind is None:
        raise ModelError(f"cannot tell the kind of {file.name}: pass --kind")
    return ModelEntry(name=name or file.stem, path=rel, sha256=sha256_file(file),
                      size=file.stat().st_size, kind=kind, urls=tuple(urls), description=description)


def add_entry(manifest: Path, entry: ModelEntry) -> bool:
    """Adds or replaces (same name or path) `entry` in a manifest file; True if it changed."""
    entries = read_manifest(manifest) if manifest.is_file() else []
    old = [e for e in entries if e.name == entry.name or e.path == entry.path]
    if old == [entry]:
        return False
    keep = [e for e in entries if e not in old]
    write_manifest(manifest, keep + [entry])
    return True
