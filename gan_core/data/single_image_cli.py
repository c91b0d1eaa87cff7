"""Command line for SIV-GAN's Single Image / Single Video data (thesis l.1468-1472, Fig. 5.6).

    python -m gan_core.data.single_image_cli image --src FILE_OR_FRAME_DIR --out DIR/image.png [--min-side N]
    python -m gan_core.data.single_image_cli video --src FRAME_DIR --out DIR [--skip I] [--max-frames N]
    python -m gan_core.data.single_image_cli embedded --out DIR [--height 64] [--width 128]
        [--n-images 2] [--n-videos 1] [--n-frames 8] [--seed 0]

``image`` takes the middle frame when --src is a folder of frames (thesis l.1470). ``video``
writes every --skip-th frame (at most --max-frames, 0 = all) as DIR/frames/%05d.png plus
DIR/frames.json. Grayscale / RGBA inputs are converted with a warning; images below the model's
minimum side are an error naming the file.
"""
from __future__ import annotations

import argparse
import sys

from ..utils.cli import run_cli
from . import embedded_single as emb
from .single_image import prepare_image, prepare_video


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_core.data.single_image_cli", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("image", help="Single Image: an image file, or the middle frame of a frame folder")
    i.add_argument("--src", required=True)
    i.add_argument("--out", required=True, help="output PNG")
    i.add_argument("--min-side", type=int, default=None, help="default: the model's minimum (48 px)")
    v = sub.add_parser("video", help="Single Video: all (or every --skip-th) frames of a frame folder")
    v.add_argument("--src", required=True)
    v.add_argument("--out", required=True, help="output folder (frames/ and frames.json)")
    v.add_argument("--skip", type=int, default=1, help="skip factor i: every i-th frame (Fig. 5.6)")
    v.add_argument("--max-frames", type=int, default=0, help="frames kept (0 = all; Fig. 5.6: 100)")
    v.add_argument("--min-side", type=int, default=None)
    d = emb.EmbeddedSingleConfig()
    e = sub.add_parser("embedded", help="tiny generated stand-ins (tiny preset)")
    e.add_argument("--out", required=True)
    e.add_argument("--height", type=int, default=d.height)
    e.add_argument("--width", type=int, default=d.width)
    e.add_argument("--n-images", type=int, default=d.n_images)
    e.add_argument("--n-videos", type=int, default=d.n_videos)
    e.add_argument("--n-frames", type=int, default=d.n_frames)
    e.add_argument("--seed", type=int, default=d.seed)
    return p


def _command(args: argparse.Namespace) -> int:
    if args.command == "image":
        out = prepare_image(args.src, args.out, args.min_side)
        print(f"[single-image] {out}")
    elif args.command == "video":
        frames = prepare_video(args.src, args.out, args.skip, args.max_frames, args.min_side)
        print(f"[single-video] {len(frames)} frames -> {args.out}")
    else:
        cfg = emb.EmbeddedSingleConfig(height=args.height, width=args.width, n_images=args.n_images,
                                       n_videos=args.n_videos, n_frames=args.n_frames, seed=args.seed)
        print(f"[embedded] single-image data written to {emb.generate(args.out, cfg)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.set_defaults(func=_command)
    return run_cli(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
