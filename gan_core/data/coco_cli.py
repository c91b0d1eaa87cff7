"""Command line of the COCO-20i data preparation (gan_core.data.coco).

    python -m gan_core.data.coco_cli embedded --out DIR [--height 120] [--width 160] [--n-train 16] [--n-val 24]
        [--classes 1,2,...] [--seed 0]
    python -m gan_core.data.coco_cli masks --annotations instances_val2014.json --images DIR/val2014 --split val
        --root ROOT            # ROOT/val/*.png, ROOT/lists/val.txt, ROOT/val2014 -> DIR/val2014
    python -m gan_core.data.coco_cli supports --root ROOT --list ROOT/lists/val.txt --fold K --n 5 --seed 0
        --out support_pool.json [--min-pixels 2048]
    python -m gan_core.data.coco_cli pair --root ROOT --list LIST --stem X --class C --out-image P --out-mask P
"""
from __future__ import annotations

import argparse
import sys

from ..utils.cli import run_cli
from . import coco


def cmd_embedded(args):
    from .embedded_coco import EmbeddedCocoConfig, generate

    cfg = EmbeddedCocoConfig(height=args.height, width=args.width, n_train=args.n_train, n_val=args.n_val,
                             classes=tuple(int(c) for c in args.classes.split(",") if c), seed=args.seed)
    print(f"[embedded] COCO-format dataset written to {generate(args.out, cfg)}")


def cmd_masks(args):
    out = coco.write_labels(coco.load_instances(args.annotations), args.root, args.split, args.images)
    print(f"[coco] label maps and list written: {out} ({len(out.read_text().splitlines())} images)")


def cmd_supports(args):
    pool = coco.select_supports(args.list, args.root, args.fold, args.n, args.seed, args.min_pixels)
    coco.write_support_pool(args.out, pool, {"fold": args.fold, "n_per_class": args.n, "seed": args.seed,
                                             "min_pixels": args.min_pixels, "list": str(args.list)})
    print(f"[coco] fold {args.fold}: {sum(map(len, pool.values()))} support pairs -> {args.out}")


def cmd_pair(args):
    item = coco.find_item(args.list, args.root, args.stem)
    n = coco.write_support_pair(item.image, item.label, args.class_id, args.out_image, args.out_mask)
    print(f"[coco] pair class {args.class_id} / {args.stem}: {n} foreground pixels")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_core.data.coco_cli", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("embedded", help="generate the tiny COCO-format dataset")
    e.add_argument("--out", required=True)
    e.add_argument("--height", type=int, default=120)
    e.add_argument("--width", type=int, default=160)
    e.add_argument("--n-train", type=int, default=16)
    e.add_argument("--n-val", type=int, default=24)
    e.add_argument("--classes", default="1,2,3,4,5,6,7,8")
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=cmd_embedded)
    m = sub.add_parser("masks", help="semantic label maps + image list from an instances JSON")
    m.add_argument("--annotations", required=True)
    m.add_argument("--images", default=None, help="folder of the split's JPEGs (linked as ROOT/<split>2014)")
    m.add_argument("--split", required=True, choices=coco.SPLITS)
    m.add_argument("--root", required=True)
    m.set_defaults(func=cmd_masks)
    s = sub.add_parser("supports", help="fixed-seed selection of N support images per test class of a fold")
    s.add_argument("--root", required=True)
    s.add_argument("--list", required=True)
    s.add_argument("--fold", type=int, required=True)
    s.add_argument("--n", type=int, default=5)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--min-pixels", type=int, default=coco.MIN_PIXELS)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_supports)
    q = sub.add_parser("pair", help="OSMIS training pair (image + binary class mask) of one support")
    q.add_argument("--root", required=True)
    q.add_argument("--list", required=True)
    q.add_argument("--stem", required=True)
    q.add_argument("--class", dest="class_id", type=int, required=True)
    q.add_argument("--out-image", required=True)
    q.add_argument("--out-mask", required=True)
    q.set_defaults(func=cmd_pair)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
