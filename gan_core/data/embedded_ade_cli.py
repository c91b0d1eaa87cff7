"""Build the tiny synthetic semantic dataset (see gan_core/data/embedded_ade.py).

    python -m gan_core.data.embedded_ade_cli --out DIR [--layout {ade20k,cityscapes,cocostuff}] [--n-train 24]
        [--n-val 8] [--height 64] [--width 64] [--n-classes 6] [--seed 0]

Prints the dataset root: DIR/ADEChallengeData2016 (ade20k, default), DIR/cityscapes or DIR/cocostuff.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..utils.cli import run_cli
from .embedded_ade import LAYOUTS, EmbeddedADEConfig, build


def _command(a: argparse.Namespace) -> int:
    root = build(a.out, EmbeddedADEConfig(n_train=a.n_train, n_val=a.n_val, height=a.height, width=a.width,
                                          n_classes=a.n_classes, seed=a.seed), a.layout)
    print(root)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan_core.data.embedded_ade_cli", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder that receives ADEChallengeData2016/ (cityscapes/, cocostuff/)")
    p.add_argument("--layout", choices=LAYOUTS, default="ade20k", help="folder and label layout (default ade20k)")
    p.add_argument("--n-train", type=int, default=24)
    p.add_argument("--n-val", type=int, default=8)
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--n-classes", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_command)
    return run_cli(p, argv)


if __name__ == "__main__":
    sys.exit(main())
