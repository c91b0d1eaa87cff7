"""Command line for SIV-GAN / OSMIS training and sampling.

    python -m gan_core.train.osmis_cli train (--image IMG [--image IMG ...] | --images DIR) [--mask MASK] \
        --out DIR [--params JSON] [--seed N] [--device auto|cpu|cuda] [--bf16] [--channels-last]
    python -m gan_core.train.osmis_cli sample --run DIR --n N --seed S --out DIR [--device ...]

``--params`` is a JSON object of OSMISConfig overrides plus the loop keys ``iterations``,
``checkpoint_every`` and ``log_every``. Without ``--mask`` the model is SIV-GAN. Training
resumes from ``OUT/checkpoint.pt`` when present. Outputs: ``OUT/config.json`` (resolved
configuration), ``OUT/generator_ema.pt`` (EMA generator state_dict), ``OUT/done.json``.
Several training images (repeated ``--image``, or every image of ``--images DIR``) = SIV-GAN's
Single Video setting (thesis l.1470): one model, batches drawn from all frames; no mask allowed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import ConfigError, DataError, MissingResourceError
from ..nets.osmis import MIN_IMAGE_SIDE, Architecture, OSMISGenerator
from ..nets.osmis_config import OSMISConfig
from ..provenance import provenance
from ..sample.generate import generate, write_samples
from ..utils.atomic import torch_save, write_json
from ..utils.cli import run_cli
from ..data.single_image import list_image_files, load_training_images
from ..utils.images import check_mask_classes, check_pair, read_image, read_mask
from .loop import LoopConfig, run_training, seed_everything
from .osmis_trainer import OSMISTrainer
from ..utils.device import resolve_device

LOOP_KEYS = ("iterations", "checkpoint_every", "log_every")
DEFAULT_ITERATIONS = 100_000  # thesis l.1468: 100k iterations for the single-image setting
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "generator_ema.pt"


def split_params(params: dict[str, Any]) -> tuple[OSMISConfig, dict[str, int]]:
    loop = {k: int(params[k]) for k in LOOP_KEYS if k in params}
    model = {k: v for k, v in params.items() if k not in LOOP_KEYS}
    return OSMISConfig.from_dict(model, where="--params"), loop


def training_sources(args: argparse.Namespace) -> list[str]:
    """The training image files: repeated --image, or the images of --images DIR (sorted)."""
    files = list(args.image or [])
    if args.images:
        files += [str(p) for p in list_image_files(args.images)]
    if not files:
        raise ConfigError("train needs --image IMG (repeatable) or --images DIR")
    return files


def load_inputs(image_path: str, mask_path: str | None, num_mask_classes: int = 0):
    """Read and validate the training pair (README "Bad input"): non-RGB images are converted with a warning
    (``read_image``); DataError naming the file for an image below the minimum side, an image/mask size
    mismatch (both files named), an empty mask, or a mask with ids >= ``num_mask_classes`` (when configured,
    i.e. > 0; 0 = derived from the mask by the trainer)."""
    image = read_image(image_path)
    if min(image.shape[:2]) < MIN_IMAGE_SIDE:
        raise DataError(image_path, f"image of {image.shape[0]}x{image.shape[1]} px is smaller than the minimum "
                                    f"side {MIN_IMAGE_SIDE} px (3 * 2^(g-1) for the smallest generator depth g=5)")
    mask = None
    if mask_path is not None:
        mask = read_mask(mask_path)
        check_pair(image_path, image, mask_path, mask)
        check_mask_classes(mask_path, mask, num_mask_classes)
    return image, mask


def cmd_train(args: argparse.Namespace) -> int:
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--params is not valid JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise ConfigError("--params must be a JSON object")
    cfg, loop_keys = split_params(params)
    sources = training_sources(args)
    if len(sources) == 1:
        image, mask = load_inputs(sources[0], args.mask, cfg.num_mask_classes)
    elif args.mask is not None:
        raise ConfigError("--mask needs exactly one training image (OSMIS); several images = SIV-GAN Single Video")
    else:
        image, mask = load_training_images(sources), None
    device = resolve_device(args.device)
    out = Path(args.out)
    seed_everything(args.seed)  # before building the models, so initialisation is seeded
    trainer = OSMISTrainer(cfg, image, mask, device=device, amp_bf16=args.bf16, channels_last=args.channels_last,
                           source=sources[0] if len(sources) == 1 else sources, mask_source=args.mask or "<mask>")
    loop = LoopConfig(iterations=loop_keys.get("iterations", DEFAULT_ITERATIONS),
                      checkpoint_every=loop_keys.get("checkpoint_every", 1000),
                      log_every=loop_keys.get("log_every", 100), seed=args.seed,
                      desc=f"osmis {out.name}")
    resolved = {"osmis": trainer.cfg.to_dict(), "architecture": trainer.arch.to_dict(),
                "loop": {k: getattr(loop, k) for k in LOOP_KEYS}, "seed": args.seed,
                "image": sources[0] if len(sources) == 1 else sources, "mask": args.mask, "bf16": args.bf16,
                "channels_last": args.channels_last}
    write_json(out / CONFIG_NAME, resolved)
    run_training(trainer, out, loop, meta={"provenance": provenance(params=resolved, seed=args.seed),
                                           "device": str(device)})
    torch_save(trainer.G_ema.state_dict(), out / WEIGHTS_NAME)
    return 0


def load_generator(run: str | Path, device: torch.device) -> OSMISGenerator:
    run = Path(run)
    cfg_path, w_path = run / CONFIG_NAME, run / WEIGHTS_NAME
    for what, p in (("OSMIS run configuration", cfg_path), ("OSMIS EMA generator weights", w_path)):
        if not p.is_file():
            raise MissingResourceError(what, p, hint="Train the model first (osmis_cli train).")
    try:
        resolved = json.loads(cfg_path.read_text())
        cfg = OSMISConfig.from_dict(resolved["osmis"], where=str(cfg_path))
        arch = Architecture.from_dict(resolved["architecture"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(cfg_path, f"not a valid OSMIS run configuration ({exc})") from exc
    gen = OSMISGenerator(cfg, arch)
    gen.load_state_dict(torch.load(w_path, map_location="cpu", weights_only=True))
    return gen.to(device).eval()


def cmd_sample(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    gen = load_generator(args.run, device)
    images, masks = generate(gen, args.n, args.seed, args.batch, device)
    write_samples(images, masks, args.out, meta={"seed": args.seed, "run": Path(args.run).name,
                                                 "provenance": provenance(params={"n": args.n}, seed=args.seed)})
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_core.train.osmis_cli", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train SIV-GAN (no mask) or OSMIS (with mask) on one image")
    t.add_argument("--image", action="append", default=None, help="training image; repeatable (video frames)")
    t.add_argument("--images", default=None, help="folder of training images (all frames of a video)")
    t.add_argument("--mask", default=None)
    t.add_argument("--out", required=True)
    t.add_argument("--params", default="{}", help="JSON object: OSMISConfig overrides + iterations, "
                                                   "checkpoint_every, log_every")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    t.add_argument("--bf16", action="store_true", help="bfloat16 autocast (default: fp32 as the thesis)")
    t.add_argument("--channels-last", dest="channels_last", action="store_true")
    t.set_defaults(func=cmd_train)
    s = sub.add_parser("sample", help="draw samples from a finished run's EMA generator")
    s.add_argument("--run", required=True)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s.add_argument("--batch", type=int, default=10)
    s.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    s.set_defaults(func=cmd_sample)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
