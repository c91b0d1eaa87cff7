"""Command line for the embedded (generated, CC0-sourced) datasets.

    python -m gan_core.data.embedded_cli davis --out DIR [--height 480] [--width 854] [--n-frames 8]
        [--seed 0] [--n-train 3] [--n-val 3] [--n-multi-object 1]

The folder is built in a temporary sibling and renamed onto DIR (atomic). An existing
DIR is replaced only if it is an earlier embedded dataset.
"""
from __future__ import annotations

import argparse
import sys

from ..utils.cli import run_cli
from .embedded_davis import EmbeddedDavisConfig, generate


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_core.data.embedded_cli", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="dataset", required=True)
    d = sub.add_parser("davis", help="DAVIS-2017-format video dataset (JPEGImages/Annotations/ImageSets)")
    defaults = EmbeddedDavisConfig()
    d.add_argument("--out", required=True, help="output root folder")
    d.add_argument("--height", type=int, default=defaults.height)
    d.add_argument("--width", type=int, default=defaults.width)
    d.add_argument("--n-frames", type=int, default=defaults.n_frames)
    d.add_argument("--seed", type=int, default=defaults.seed)
    d.add_argument("--n-train", type=int, default=defaults.n_train_sequences)
    d.add_argument("--n-val", type=int, default=defaults.n_val_sequences)
    d.add_argument("--n-multi-object", type=int, default=defaults.n_multi_object)
    return p


def _command(args: argparse.Namespace) -> int:
    cfg = EmbeddedDavisConfig(
        height=args.height, width=args.width, n_frames=args.n_frames, seed=args.seed,
        n_train_sequences=args.n_train, n_val_sequences=args.n_val, n_multi_object=args.n_multi_object,
    )
    out = generate(args.out, cfg)
    print(f"[embedded] DAVIS-format dataset written to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.set_defaults(func=_command)
    return run_cli(parser, argv, error_code=1)  # this command has always exited 1 on a ReproError


if __name__ == "__main__":
    sys.exit(main())
