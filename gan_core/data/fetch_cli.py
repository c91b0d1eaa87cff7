"""Command line for the resource manifest: fetch, verify and list external files.

    python -m gan_core.data.fetch_cli fetch NAME [--resources DIR] [--allow-unpinned] [--url-override URL]
    python -m gan_core.data.fetch_cli verify NAME [--resources DIR]
    python -m gan_core.data.fetch_cli status [--resources DIR] [--deep]

``--url-override`` (repeatable) replaces the manifest mirrors (local mirrors, tests).
Exit status 0 on success, 1 with a message naming what to fetch and how otherwise.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import MissingResourceError, ReproError
from ..resources import load_manifest, resource_path
from ..utils.cli import run_cli
from . import fetch as F


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_core.data.fetch_cli", description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", default=None, help="manifest YAML (default: workflow/manifests/resources.yaml)")
    sub = p.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fetch", help="download, verify and extract one entry")
    f.add_argument("name")
    f.add_argument("--resources", default="resources", help="resources folder (default: resources)")
    f.add_argument("--allow-unpinned", action="store_true",
                   help="accept an entry without checksum and record its sha256 (trust on first use)")
    f.add_argument("--url-override", action="append", default=None, metavar="URL",
                   help="download from URL instead of the manifest mirrors (repeatable)")
    f.add_argument("--retries", type=int, default=5)
    f.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")
    f.add_argument("--no-progress", action="store_true")

    v = sub.add_parser("verify", help="re-hash a fetched entry")
    v.add_argument("name")
    v.add_argument("--resources", default="resources")

    s = sub.add_parser("status", help="list every entry: present | missing | corrupt | unverified")
    s.add_argument("--resources", default="resources")
    s.add_argument("--deep", action="store_true", help="re-hash files with pinned checksums")
    return p


def _command(args: argparse.Namespace) -> int:
    try:
        manifest = load_manifest(args.manifest)
        if args.command == "status":
            rows = F.status(manifest, args.resources, deep=args.deep)
            width = max(len(r.name) for r in rows) if rows else 4
            for r in rows:
                print(f"{r.name:<{width}}  {r.state:<10}  {r.path}")
            return 0
        entry = manifest[args.name]
        if args.command == "fetch":
            path = F.fetch(entry, args.resources, allow_unpinned=args.allow_unpinned, urls=args.url_override,
                           retries=args.retries, timeout=args.timeout, progress=not args.no_progress)
            print(f"[fetch] {entry.name}: ready at {path}")
        else:
            path = F.verify(entry, args.resources)
            print(f"[verify] {entry.name}: OK ({path})")
        return 0
    except ReproError as exc:
        # the hint becomes a note of the error: run_cli prints it on stderr right after "error: <message>"
        name = getattr(args, "name", None)
        if name and args.command != "status" and not isinstance(exc, MissingResourceError):
            try:
                e = load_manifest(args.manifest)[name]
                exc.add_note(
                    f"hint: expected at {resource_path(e, args.resources)}; {e.how_to_get()}\n"
                    f"      Snakemake target: {e.fetch_target}"
                )
            except ReproError:
                pass
        raise


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.set_defaults(func=_command)
    return run_cli(parser, argv, error_code=1)  # this command has always exited 1 on a ReproError


if __name__ == "__main__":
    sys.exit(main())
