"""Build the tiny synthetic ADE20K-layout dataset (see gan_core/data/embedded_ade.py).

    python -m gan_core.data.embedded_ade_cli --out DIR [--n-train 24] [--n-val 8] [--height 64] [--width 64]
        [--n-classes 6] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..errors import ReproError
from .embedded_ade import EmbeddedADEConfig, build


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan_core.data.embedded_ade_cli", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder that receives ADEChallengeData2016/")
    p.add_argument("--n-train", type=int, default=24)
    p.add_argument("--n-val", type=int, default=8)
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--n-classes", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    try:
        root = build(a.out, EmbeddedADEConfig(n_train=a.n_train, n_val=a.n_val, height=a.height, width=a.width,
                                              n_classes=a.n_classes, seed=a.seed))
    except ReproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
