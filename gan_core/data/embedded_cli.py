"""Command line for the embedded (generated, CC0-sourced) datasets.

    python -m gan_core.data.embedded_cli davis --out DIR [--height 480] [--width 854] [--n-frames 8]
        [--seed 0] [--n-train 3] [--n-val 3] [--n-multi-object 1]

The folder is built in a temporary sibling and renamed onto DIR (atomic). An existing
DIR is replaced only if it is an earlier embedded dataset.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import ReproError
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = EmbeddedDavisConfig(
            height=args.height, width=args.width, n_frames=args.n_frames, seed=args.seed,
            n_train_sequences=args.n_train, n_val_sequences=args.n_val, n_multi_object=args.n_multi_object,
        )
        out = generate(args.out, cfg)
    except ReproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"[embedded] DAVIS-format dataset written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
