"""``fer-models``: get, check and register the model files listed in models/manifest.json.

    fer-models fetch [NAME...]   make every (or each named) model file available and verified:
                                 found locally, copied from the mirror ($FER_MODEL_MIRROR, default
                                 ../shared/models), or downloaded from the manifest URLs (the only
                                 code of fer_ros that downloads)
    fer-models check [NAME...]   resolve and sha256-check them as the node would (no download)
    fer-models list              show the manifest entries and where each file is found
    fer-models add FILE [--name N] [--kind K] [--url URL]... [--description D] [--manifest M]
                                 (re)compute FILE's sha256 and size and write its entry into the
                                 manifest of the models/ directory that holds it

Errors are one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core import model_files as mf
from ..deps import missing_module_message
from ..core.errors import FerError, ModelError


def _select(names: list[str], entries: dict[str, mf.ModelEntry]) -> list[mf.ModelEntry]:
    if not names:
        return sorted(entries.values(), key=lambda e: e.path)
    return [mf.find_entry(name, entries) for name in names]


def cmd_fetch(args: argparse.Namespace) -> int:
    dirs, mirror = mf.search_dirs(), mf.mirror_dir()
    entries = mf.load_manifest(dirs)
    for entry in _select(args.names, entries):
        path, how = mf.fetch_model(entry, dirs, mirror, entries)
        if not args.quiet:
            source = {"local": "present", "mirror": f"copied from {mirror}",
                      "download": "downloaded", "made": f"made by {entry.made_by}"}[how]
            print(f"{entry.name}: {path} ({source}, sha256 ok)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    dirs, mirror = mf.search_dirs(), mf.mirror_dir()
    for entry in _select(args.names, mf.load_manifest(dirs)):
        found = mf.locate(entry, dirs, mirror)
        if found is None:
            raise mf.missing_error(entry, dirs, mirror)
        print(f"ok {entry.name}: {found[0]}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    dirs = mf.search_dirs()
    for entry in sorted(mf.load_manifest(dirs).values(), key=lambda e: e.path):
        where = next((str(d / entry.path) for d in dirs if (d / entry.path).is_file()), "missing")
        print(f"{entry.name:12s} {entry.kind:26s} {entry.size:>10d}  {entry.path}  [{where}]")
    return 0


def _manifest_for(file: Path, explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    for parent in file.resolve().parents:
        if (parent / mf.MANIFEST_NAME).is_file():
            return parent / mf.MANIFEST_NAME
    raise ModelError(f"no {mf.MANIFEST_NAME} in any directory above {file}; pass --manifest")


def cmd_add(args: argparse.Namespace) -> int:
    file = Path(args.file)
    manifest = _manifest_for(file, args.manifest)
    old = {e.path: e for e in mf.read_manifest(manifest)} if manifest.is_file() else {}
    entry = mf.make_entry(file, manifest.parent, args.name, args.kind, tuple(args.url),
                          args.description or "")
    previous = old.get(entry.path)
    if previous is not None:  # keep what was not given again
        entry = mf.ModelEntry(
            name=args.name or previous.name, path=entry.path, sha256=entry.sha256, size=entry.size,
            kind=args.kind or previous.kind, urls=tuple(args.url) or previous.urls,
            description=args.description if args.description is not None else previous.description)
    changed = mf.add_entry(manifest, entry)
    state = "updated" if changed else "unchanged"
    print(f"{entry.name}: {entry.path} sha256 {entry.sha256} size {entry.size} ({manifest} {state})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fer-models", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="make the model files available (mirror, then download)")
    fetch.add_argument("names", nargs="*", help="manifest names or paths (default: all)")
    fetch.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    fetch.set_defaults(func=cmd_fetch)
    check = sub.add_parser("check", help="resolve and sha256-check the model files (no download)")
    check.add_argument("names", nargs="*", help="manifest names or paths (default: all)")
    check.set_defaults(func=cmd_check)
    lst = sub.add_parser("list", help="show the manifest entries")
    lst.set_defaults(func=cmd_list)
    add = sub.add_parser("add", help="write FILE's sha256/size entry into its manifest")
    add.add_argument("file", help="model file under a models/ directory, e.g. models/fer7.pt")
    add.add_argument("--name", help="manifest name (default: file name without suffix)")
    add.add_argument("--kind", help="e.g. classifier (default: from the file suffix)")
    add.add_argument("--url", action="append", default=[], help="public origin URL (repeatable)")
    add.add_argument("--description", help="one-line description")
    add.add_argument("--manifest", type=Path, help="manifest to write (default: nearest above FILE)")
    add.set_defaults(func=cmd_add)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FerError, OSError) as exc:
        print(f"fer-models: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # e.g. onnx, to make the SSD's ONNX graph
        message = missing_module_message(exc)
        if message is None:
            raise
        print(f"fer-models: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
