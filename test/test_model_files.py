"""Model-file resolution: manifest, search order, mirror copy, sha256 checks, fer-models CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer_ros.core import model_files as mf
from fer_ros.core.errors import ModelError

REPO_MODELS = Path(__file__).resolve().parents[1] / "models"
SETUP_HINT = mf.setup_hint()  # `make setup` in its venv, `ros2 run ...` elsewhere (tested below)


def models_dir_with_manifest(tmp_path: Path, entries: list[mf.ModelEntry] | None = None) -> Path:
    """A tmp models dir holding the repo's manifest (or the given entries) and no model file."""
    d = tmp_path / "models"
    d.mkdir()
    if entries is None:
        shutil.copy(REPO_MODELS / mf.MANIFEST_NAME, d / mf.MANIFEST_NAME)
    else:
        mf.write_manifest(d / mf.MANIFEST_NAME, entries)
    return d


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs the installed `fer-models` console script (or the module when not installed)."""
    script = Path(sys.executable).with_name("fer-models")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "fer_ros.cli.models"]
    return subprocess.run(cmd + list(args), env=env, capture_output=True, text=True, timeout=60)


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FER_MODEL_DIR", "FER_MODEL_MIRROR")}
    env.update(extra)
    return env


def test_manifest_lists_the_face_detectors_with_hashes_and_origins() -> None:
    entries = mf.read_manifest(REPO_MODELS / mf.MANIFEST_NAME)
    by_path = {e.path: e for e in entries}
    assert set(by_path) >= {
        "face_detector/opencv_face_detector_uint8.pb",
        "face_detector/opencv_face_detector.pbtxt",
        "face_detector/face_detection_yunet_2026may.onnx",
        "face_detector/opencv_face_detector_res10.onnx",
        "ssd_res10_int8.onnx",
    }
    for e in entries:
        assert len(e.sha256) == 64 and int(e.sha256, 16) >= 0
        assert e.size > 0 and e.kind
        if e.derived_from:  # made from other entries, never downloaded
            assert not e.urls and set(e.derived_from) <= {x.name for x in entries}
            assert e.made_by.startswith("fer_ros.")
        elif e.path.startswith("face_detector/"):  # fetched by `fer-models fetch`
            assert e.urls and all(u.startswith("https://") for u in e.urls)
        else:  # committed to the repository
            assert (REPO_MODELS / e.path).is_file(), e.path
    assert len({e.name for e in entries}) == len(entries)


def test_manifest_hashes_match_the_mirror(shared_models_dir: Path) -> None:
    for e in mf.read_manifest(REPO_MODELS / mf.MANIFEST_NAME):
        mirrored = shared_models_dir / e.path
        if mirrored.is_file():
            assert mf.sha256_file(mirrored) == e.sha256, e.path
            assert mirrored.stat().st_size == e.size, e.path


def test_search_order_puts_fer_model_dir_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FER_MODEL_DIR", str(tmp_path))
    dirs = mf.search_dirs()
    assert dirs[0] == tmp_path
    assert REPO_MODELS in dirs


def test_resolves_from_mirror_by_copying_into_models_dir(tmp_path: Path, shared_models_dir: Path) -> None:
    target = models_dir_with_manifest(tmp_path)
    path = mf.resolve_model("ssd_weights", dirs=[target], mirror=shared_models_dir)
    assert path == target / "face_detector" / "opencv_face_detector_uint8.pb"
    assert path.is_file() and mf.sha256_file(path) == mf.sha256_file(
        shared_models_dir / "face_detector" / "opencv_face_detector_uint8.pb")
    # by path and by file name as well as by name; now found locally without the mirror
    for name in ("face_detector/opencv_face_detector_uint8.pb", "opencv_face_detector_uint8.pb"):
        assert mf.resolve_model(name, dirs=[target], mirror=None) == path


def test_default_resolution_finds_every_manifest_file(shared_models_dir: Path) -> None:
    for name in mf.load_manifest():
        path = mf.resolve_model(name)
        assert path.is_file()


def test_corrupt_file_raises_with_expected_and_actual_hash(tmp_path: Path) -> None:
    target = models_dir_with_manifest(tmp_path)
    bad = target / "face_detector" / "opencv_face_detector.pbtxt"
    bad.parent.mkdir()
    bad.write_text("not a graph\n")
    expected = mf.find_entry("ssd_config", mf.load_manifest([target])).sha256
    with pytest.raises(ModelError) as err:
        mf.resolve_model("ssd_config", dirs=[target], mirror=None)
    message = str(err.value)
    assert str(bad) in message and expected in message and mf.sha256_file(bad) in message
    assert SETUP_HINT in message


def test_cli_check_reports_corrupt_copy_in_one_line(tmp_path: Path) -> None:
    model_dir = tmp_path / "override"
    bad = model_dir / "face_detector" / "face_detection_yunet_2026may.onnx"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\0" * 100)
    result = run_cli("check", env=cli_env(FER_MODEL_DIR=str(model_dir)))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("fer-models: error: model file ")
    assert str(bad) in lines[0] and "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0" in lines[0]
    assert SETUP_HINT in lines[0]


def test_missing_file_says_run_make_setup(tmp_path: Path) -> None:
    target = models_dir_with_manifest(tmp_path)
    empty_mirror = tmp_path / "empty_mirror"
    empty_mirror.mkdir()
    with pytest.raises(ModelError, match=r"not found in .*" + re.escape(SETUP_HINT)):
        mf.resolve_model("yunet", dirs=[target], mirror=empty_mirror)


def test_cli_check_reports_missing_file_in_one_line(tmp_path: Path) -> None:
    ghost = mf.ModelEntry(name="ghost", path="ghost/none.onnx", sha256="0" * 64, size=1,
                          kind="face-detector-yunet")
    model_dir = models_dir_with_manifest(tmp_path, [ghost])
    empty_mirror = tmp_path / "empty_mirror"
    empty_mirror.mkdir()
    result = run_cli("check", "ghost", env=cli_env(FER_MODEL_DIR=str(model_dir),
                                                   FER_MODEL_MIRROR=str(empty_mirror)))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "ghost/none.onnx" in lines[0] and SETUP_HINT in lines[0]


def test_unknown_name_says_how_to_register(tmp_path: Path) -> None:
    target = models_dir_with_manifest(tmp_path)
    with pytest.raises(ModelError, match=r"unknown model 'nope'.*fer-models add"):
        mf.resolve_model("nope", dirs=[target], mirror=None)


def test_fetch_downloads_only_when_neither_models_nor_mirror_has_it(tmp_path: Path) -> None:
    origin = tmp_path / "origin" / "w.onnx"
    origin.parent.mkdir()
    origin.write_bytes(b"weights" * 100)
    entry = mf.ModelEntry(name="w", path="sub/w.onnx", sha256=mf.sha256_file(origin),
                          size=origin.stat().st_size, kind="face-detector-yunet",
                          urls=(origin.as_uri(),))
    target = models_dir_with_manifest(tmp_path, [entry])
    empty_mirror = tmp_path / "mirror"
    empty_mirror.mkdir()

    path, how = mf.fetch_model(entry, [target], empty_mirror)
    assert (path, how) == (target / "sub" / "w.onnx", "download")
    assert path.read_bytes() == origin.read_bytes()
    assert mf.fetch_model(entry, [target], empty_mirror) == (path, "local")


def test_fetch_rejects_a_download_with_the_wrong_hash(tmp_path: Path) -> None:
    origin = tmp_path / "w.onnx"
    origin.write_bytes(b"tampered")
    entry = mf.ModelEntry(name="w", path="w.onnx", sha256="1" * 64, size=8,
                          kind="face-detector-yunet", urls=(origin.as_uri(),))
    target = models_dir_with_manifest(tmp_path, [entry])
    with pytest.raises(ModelError, match="could not download 'w.onnx'"):
        mf.fetch_model(entry, [target], None)
    assert not (target / "w.onnx").exists()


def test_cli_add_writes_and_updates_an_entry(tmp_path: Path) -> None:
    model_dir = models_dir_with_manifest(tmp_path, [])
    ckpt = model_dir / "fer7.pt"
    ckpt.write_bytes(b"checkpoint v1")
    result = run_cli("add", str(ckpt), "--url", "https://example.org/fer7.pt", env=cli_env())
    assert result.returncode == 0, result.stderr
    (entry,) = mf.read_manifest(model_dir / mf.MANIFEST_NAME)
    assert (entry.name, entry.path, entry.kind, entry.size) == ("fer7", "fer7.pt", "classifier", 13)
    assert entry.sha256 == mf.sha256_file(ckpt)

    ckpt.write_bytes(b"checkpoint v2, retrained")
    assert run_cli("add", str(ckpt), env=cli_env()).returncode == 0
    (updated,) = mf.read_manifest(model_dir / mf.MANIFEST_NAME)
    assert updated.sha256 == mf.sha256_file(ckpt) != entry.sha256
    assert updated.size == ckpt.stat().st_size
    assert updated.urls == ("https://example.org/fer7.pt",)  # kept from the first add
    assert json.loads((model_dir / mf.MANIFEST_NAME).read_text())["format"] == mf.MANIFEST_FORMAT


def test_sha256_is_cached_per_path_size_and_mtime(tmp_path: Path) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"a" * 1000)
    first = mf.sha256_file(f)
    st = f.stat()
    assert mf._HASH_CACHE[(str(f.resolve()), st.st_size, st.st_mtime_ns)] == first
    f.write_bytes(b"b" * 1001)
    assert mf.sha256_file(f) != first


def test_setup_hint_names_make_setup_only_in_the_venv_it_made(tmp_path: Path) -> None:
    made = tmp_path / "venv"
    (made / ".fer-setup").mkdir(parents=True)
    other = tmp_path / "colcon_or_system_prefix"
    other.mkdir()
    assert mf.setup_hint(made) == mf.MAKE_SETUP_HINT
    assert mf.setup_hint(other) == mf.INSTALLED_HINT
    assert "ros2 run fer_ros fer-models fetch" in mf.INSTALLED_HINT


def test_missing_file_in_an_install_says_ros2_run_fer_models_fetch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the interpreter's prefix is not a `make setup` venv (a colcon install), the error
    names the command that works there."""
    target = models_dir_with_manifest(tmp_path)
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    with pytest.raises(ModelError) as err:
        mf.resolve_model("yunet", dirs=[target], mirror=None)
    assert mf.INSTALLED_HINT in str(err.value) and "make setup" not in str(err.value)


def test_unknown_classifier_lists_only_classifiers(tmp_path: Path) -> None:
    target = models_dir_with_manifest(tmp_path)
    with pytest.raises(ModelError) as err:
        mf.resolve_model("fer9", dirs=[target], mirror=None, kind="classifier")
    message = str(err.value)
    assert message.startswith("unknown classifier 'fer9' (known: fer6, fer7, fer7_fer2013, fer7_photo, ferplus8);")
    assert "yunet" not in message and "ssd" not in message and ".pt checkpoint" in message
    with pytest.raises(ModelError, match="unknown classifier 'yunet'"):
        mf.resolve_model("yunet", dirs=[target], mirror=None, kind="classifier")


def _backticked(cell: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", cell))


def _table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of the markdown table that starts with ``header``."""
    block = text[text.index(header):].split("\n\n")[0].splitlines()[2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in block]


def test_docs_model_table_matches_the_manifest() -> None:
    """docs/setup-from-wheels.md's model-file table names every manifest entry and its file,
    and nothing else: the table cannot drift from models/."""
    doc = (REPO_MODELS.parent / "docs" / "setup-from-wheels.md").read_text()
    rows = _table_rows(doc, "| name | file under `models/` | origin |")
    names = set().union(*(_backticked(row[0]) for row in rows))
    paths = set().union(*(_backticked(row[1]) for row in rows))
    manifest = mf.read_manifest(REPO_MODELS / mf.MANIFEST_NAME)
    assert names == {e.name for e in manifest}
    assert paths == {e.path for e in manifest}


def test_readme_models_table_lists_the_shipped_classifiers() -> None:
    """README's models table has one row per shipped classifier (plus the pip `fer` row)."""
    readme = (REPO_MODELS.parent / "README.md").read_text()
    rows = _table_rows(readme, "| `classifier_model` | classes |")
    listed = {sorted(_backticked(row[0]))[0] for row in rows if not row[0].startswith("pip")}
    shipped = {e.name for e in mf.read_manifest(REPO_MODELS / mf.MANIFEST_NAME)
               if e.kind == "classifier"}
    assert listed == shipped
