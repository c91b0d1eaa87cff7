"""Write LVIS v1 semantic label maps for OASIS (see gan_core/data/lvis.py).

    python -m gan_core.data.lvis_cli --json lvis_v1_train.json --split train --root ROOT
        # -> ROOT/lvis_labels/train/<stem>.png (16-bit), ROOT/lvis_labels/train.json;
        #    ROOT/images/{train2017,val2017}/ must hold the COCO 2017 images (SemanticDataConfig dataset "lvis")
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..utils.cli import run_cli
from .lvis import SPLITS, export


def _command(a: argparse.Namespace) -> int:
    print(export(a.json, a.root, a.split))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan_core.data.lvis_cli", description=__doc__.split("\n")[0])
    p.add_argument("--json", required=True, help="LVIS v1 annotation file (lvis_v1_{train,val}.json)")
    p.add_argument("--split", required=True, choices=SPLITS)
    p.add_argument("--root", required=True, help="dataset root that holds images/{train2017,val2017}")
    p.set_defaults(func=_command)
    return run_cli(p, argv)


if __name__ == "__main__":
    sys.exit(main())
