"""Extract the first-frame training pair of a DAVIS sequence (validated) for OSMIS.

``python -m gan_core.data.pair_cli --davis-root DIR --sequence SEQ --mode 2016|2017 --out-image I --out-mask M``

DAVIS-16 mode merges all objects into one foreground label; DAVIS-17 mode keeps the
object ids (void 255 becomes background). The mask is written as a DAVIS-palette PNG.

Bad input (README "Bad input"): a grayscale / palette / RGBA frame is converted to RGB with a warning naming
the file (``gan_core.utils.images.read_image``); a frame/mask size mismatch or an empty first-frame mask is a
DataError naming the files (exit code 1). Binary 0/255 and 0/1 grayscale annotations are read as object 1,
grayscale label maps of small ids and palette PNGs keep their ids.
"""
from __future__ import annotations

import argparse
import sys

from ..utils.cli import run_cli
from ..utils.images import write_image, write_mask
from .davis import DavisDataset


def _command(args: argparse.Namespace) -> int:
    image, mask = DavisDataset(args.davis_root).first_frame_pair(args.sequence, args.mode)
    write_image(args.out_image, image)
    write_mask(args.out_mask, mask)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--davis-root", required=True)
    ap.add_argument("--sequence", required=True)
    ap.add_argument("--mode", choices=["2016", "2017"], required=True)
    ap.add_argument("--out-image", required=True)
    ap.add_argument("--out-mask", required=True)
    ap.set_defaults(func=_command)
    return run_cli(ap, argv, error_code=1)  # this command has always exited 1 on a ReproError


if __name__ == "__main__":
    sys.exit(main())
