"""Qualitative figures of a trained OSMIS / SIV-GAN run: a sample grid and a latent interpolation strip.

    python -m gan_core.report.qualitative grid --run RUN_DIR --out PNG [--n 8] [--seed 0] [--cols 4]
    python -m gan_core.report.qualitative interpolate --run RUN_DIR --out PNG [--seed 0] [--steps 8]
        [--method slerp|linear]

Both read a run directory written by ``gan_core.train.osmis_cli train`` (``config.json`` +
``generator_ema.pt``; SIV-GAN runs have no masks) and render with matplotlib (Agg backend).

* ``grid`` (the thesis' sample figures, e.g. Fig. 5.x / 6.x: the training image beside generated samples):
  the first column holds the training image (read from the path recorded in ``config.json``, the first frame of
  a Single Video run, or ``--image`` / ``--mask``; resized to the generator resolution), the other columns ``n`` samples drawn with
  :func:`gan_core.sample.generate.generate` (the same noise as ``osmis_cli sample --seed``). With masks, each
  row of images is followed by a row with the masks overlaid (DAVIS colours, ``figures.overlay``). A training
  image that cannot be found is left out with a warning (the column stays, marked "training image missing").
* ``interpolate``: two noise vectors z0, z1 = the first two draws of ``generate``'s seeded stream (so the
  strip's endpoints are samples 0 and 1 of ``osmis_cli sample --seed SEED``), interpolated in ``steps``
  points (ends included) spherically (slerp, default: the noise is Gaussian, so slerp keeps the norm typical)
  or linearly; each point is decoded by the EMA generator.

Layout (exact pixel sizes, so the figure can be checked): panels of the generator resolution (H, W) times
``--scale`` (nearest upsampling), ``PAD`` pixels between and around them, and a ``HEADER`` pixel band on top
for the labels; see :func:`mosaic_size`.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ..errors import ConfigError  # noqa: E402
from ..sample.generate import generate, to_uint8  # noqa: E402
from ..utils.atomic import atomic_path  # noqa: E402
from ..utils.cli import run_cli  # noqa: E402
from ..utils.device import resolve_device  # noqa: E402
from ..utils.images import read_image, read_mask  # noqa: E402
from .figures import overlay  # noqa: E402

log = logging.getLogger("gan_core.report.qualitative")
PAD = 4       # pixels between and around panels (our choice)
HEADER = 18   # pixels of the label band on top (our choice)
DPI = 100
METHODS = ("slerp", "linear")


# ------------------------------------------------------------------------------------------- latents
def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """``steps`` latents from z0 to z1 (both included), shape (steps, *z0.shape).

    "linear": (1-t) z0 + t z1. "slerp": sin((1-t)w)/sin(w) z0 + sin(tw)/sin(w) z1 with w the angle between
    the flattened vectors (falls back to linear when they are (anti-)parallel). The endpoints are z0 and z1
    exactly (t = 0 and t = 1 are copied, not computed)."""
    if steps < 2:
        raise ConfigError(f"interpolation needs steps >= 2, got {steps}")
    if method not in METHODS:
        raise ConfigError(f"interpolation method must be one of {METHODS}, got {method!r}")
    a, b = z0.double().flatten(), z1.double().flatten()
    ts = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    cos = torch.clamp(a @ b / (a.norm() * b.norm()).clamp_min(1e-12), -1.0, 1.0)
    omega = torch.arccos(cos)
    out = []
    for t in ts:
        if method == "linear" or float(torch.sin(omega)) < 1e-6:
            v = (1 - t) * a + t * b
        else:
            v = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
        out.append(v)
    res = torch.stack(out).to(z0.dtype).reshape(steps, *z0.shape)
    res[0], res[-1] = z0, z1
    return res


def endpoint_noises(noise_dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """z0, z1 (noise_dim, 1, 1): the first two draws of :func:`gan_core.sample.generate.generate`'s stream."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    z = torch.randn(2, noise_dim, 1, 1, generator=gen)
    return z[0], z[1]


@torch.no_grad()
def decode(generator: torch.nn.Module, z: torch.Tensor, device: torch.device | str = "cpu",
           batch: int = 10) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images (n, 3, H, W) in [-1, 1] and argmax masks (n, H, W) (or None) of latents ``z`` (n, noise_dim, 1, 1),
    in eval mode, on the CPU (as ``generate`` returns them)."""
    was_training = generator.training
    generator.eval()
    images, masks = [], []
    for start in range(0, len(z), batch):
        out = generator(z[start:start + batch].to(device), features=False)
        images.append(out.images[-1].float().clamp(-1, 1).cpu())
        if out.masks is not None:
            masks.append(out.masks.argmax(dim=1).cpu())
    generator.train(was_training)
    return torch.cat(images), (torch.cat(masks) if masks else None)


def interpolation(generator: torch.nn.Module, seed: int, steps: int, method: str = "slerp",
                  device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(images, masks or None, latents) of the interpolation strip between the two seeded noises."""
    z0, z1 = endpoint_noises(generator.noise_dim, seed)
    z = interpolate_latents(z0, z1, steps, method)
    images, masks = decode(generator, z, device)
    return images, masks, z


# ------------------------------------------------------------------------------------------- layout
@dataclass
class Panel:
    image: np.ndarray | None   # uint8 (H, W, 3); None = empty cell
    label: str = ""


def mosaic_size(rows: int, cols: int, panel_hw: tuple[int, int], scale: int = 1) -> tuple[int, int]:
    """(height, width) in pixels of a figure with ``rows`` x ``cols`` panels of ``panel_hw`` x ``scale``."""
    h, w = panel_hw[0] * scale, panel_hw[1] * scale
    return HEADER + rows * h + (rows + 1) * PAD, cols * w + (cols + 1) * PAD


def _upscale(img: np.ndarray, scale: int) -> np.ndarray:
    return img if scale == 1 else img.repeat(scale, axis=0).repeat(scale, axis=1)


def render(rows: Sequence[Sequence[Panel]], panel_hw: tuple[int, int], out: str | Path, title: str = "",
           scale: int = 1) -> tuple[int, int]:
    """Place the panels on a white canvas of exactly :func:`mosaic_size` pixels, write labels above the
    panels of the first row (and the title in the header band), save as PNG atomically. Returns (H, W)."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    height, width = mosaic_size(n_rows, n_cols, panel_hw, scale)
    ph, pw = panel_hw[0] * scale, panel_hw[1] * scale
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            if panel.image is None:
                continue
            img = _upscale(panel.image, scale)
            if img.shape[:2] != (ph, pw):
                raise ValueError(f"panel ({r}, {c}) has shape {img.shape[:2]}, expected {(ph, pw)}")
            y, x = HEADER + PAD + r * (ph + PAD), PAD + c * (pw + PAD)
            canvas[y:y + ph, x:x + pw] = img
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(canvas, interpolation="nearest", extent=(0, width, height, 0))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            if not panel.label:
                continue
            x, y = PAD + c * (pw + PAD) + pw / 2, HEADER + PAD + r * (ph + PAD)
            ax.text(x, y - 2, panel.label, ha="center", va="bottom", fontsize=6, clip_on=False)
    if title:
        ax.text(PAD, 2, title, ha="left", va="top", fontsize=7)
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    plt.close(fig)
    return height, width


# ------------------------------------------------------------------------------------------- run dir
def load_run(run: str | Path, device: torch.device | str = "cpu"):
    """(generator, resolved config dict) of an ``osmis_cli train`` run directory (errors name the file)."""
    from ..train.osmis_cli import CONFIG_NAME, load_generator

    gen = load_generator(run, torch.device(device))
    return gen, json.loads((Path(run) / CONFIG_NAME).read_text())


def training_panels(resolved: dict, hw: tuple[int, int], image: str | None = None,
                    mask: str | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The training image (uint8, resized to ``hw``, bilinear) and mask (nearest; None for SIV-GAN), read from
    ``--image``/``--mask`` or the paths in ``config.json``. A missing file is left out with a warning."""
    image = image or resolved.get("image")
    if isinstance(image, list):  # SIV-GAN Single Video run (several frames): show the first one
        image = image[0] if image else None
    mask = mask or resolved.get("mask")
    img = lab = None
    if image and Path(image).is_file():
        img = np.asarray(Image.fromarray(read_image(image)).resize((hw[1], hw[0]), Image.BILINEAR))
    else:
        log.warning("training image %s not found; the figure leaves it out (pass --image)", image)
    if mask and Path(mask).is_file():
        raw = read_mask(mask)
        raw = np.where(raw == 255, 0, raw).astype(np.uint8)
        lab = np.asarray(Image.fromarray(raw).resize((hw[1], hw[0]), Image.NEAREST)).astype(np.int64)
    elif mask:
        log.warning("training mask %s not found; the figure leaves it out (pass --mask)", mask)
    return img, lab


def grid_rows(train_img, train_mask, images: np.ndarray, masks: np.ndarray | None,
              cols: int) -> list[list[Panel]]:
    """Rows of panels: column 0 = training pair (first row only), then ``cols`` samples per row; with masks
    each image row is followed by its overlay row."""
    n = len(images)
    cols = max(1, min(cols, n))
    hw = images.shape[1:3]
    blank = np.full((*hw, 3), 255, np.uint8)
    rows: list[list[Panel]] = []
    for r in range(math.ceil(n / cols)):
        idx = list(range(r * cols, min(n, (r + 1) * cols)))
        if r == 0:
            first = Panel(train_img if train_img is not None else blank,
                          "training image" if train_img is not None else "training image missing")
        else:
            first = Panel(None)
        row = [first] + [Panel(images[i], f"sample {i}" if r == 0 else "") for i in idx]
        rows.append(row)
        if masks is not None:
            first_m = Panel(None)
            if r == 0 and train_img is not None and train_mask is not None:
                first_m = Panel(overlay(train_img, train_mask))
            rows.append([first_m] + [Panel(overlay(images[i], masks[i])) for i in idx])
    return rows


def grid_figure(run: str | Path, out: str | Path, n: int = 8, seed: int = 0, cols: int = 4, scale: int = 1,
                device: str = "cpu", image: str | None = None, mask: str | None = None) -> tuple[int, int]:
    """Sample grid of a run (see module docstring). Returns the PNG's (height, width)."""
    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    gen, resolved = load_run(run, device)
    images, masks = generate(gen, n, seed, device=device)
    imgs = to_uint8(images)
    hw = imgs.shape[1:3]
    train_img, train_mask = training_panels(resolved, hw, image, mask)
    rows = grid_rows(train_img, train_mask, imgs, None if masks is None else masks.numpy(), cols)
    kind = "OSMIS" if masks is not None else "SIV-GAN"
    return render(rows, hw, out, f"{kind} {Path(run).name}: training image | {n} samples (seed {seed})", scale)


def interpolation_figure(run: str | Path, out: str | Path, seed: int = 0, steps: int = 8, method: str = "slerp",
                         scale: int = 1, device: str = "cpu") -> tuple[int, int]:
    """Interpolation strip of a run (see module docstring). Returns the PNG's (height, width)."""
    gen, _ = load_run(run, device)
    images, masks, _ = interpolation(gen, seed, steps, method, device)
    imgs = to_uint8(images)
    rows = [[Panel(imgs[i], f"t={i / (steps - 1):.2f}") for i in range(steps)]]
    if masks is not None:
        rows.append([Panel(overlay(imgs[i], masks[i].numpy())) for i in range(steps)])
    return render(rows, imgs.shape[1:3], out, f"{Path(run).name}: {method} z0 -> z1 (seed {seed})", scale)


# ------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_core.report.qualitative", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--run", required=True, help="run directory of osmis_cli train")
    common.add_argument("--out", required=True, help="output PNG")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--scale", type=int, default=1, help="integer upsampling of each panel (nearest)")
    common.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    g = sub.add_parser("grid", parents=[common], help="training image beside generated samples")
    g.add_argument("--n", type=int, default=8)
    g.add_argument("--cols", type=int, default=4, help="samples per row")
    g.add_argument("--image", default=None, help="training image (default: the path in config.json)")
    g.add_argument("--mask", default=None, help="training mask (default: the path in config.json)")
    i = sub.add_parser("interpolate", parents=[common], help="latent interpolation strip")
    i.add_argument("--steps", type=int, default=8)
    i.add_argument("--method", choices=METHODS, default="slerp")
    return p


def _command(args: argparse.Namespace) -> int:
    if args.scale < 1:
        raise ConfigError("--scale must be >= 1")
    device = str(resolve_device(args.device))
    if args.command == "grid":
        h, w = grid_figure(args.run, args.out, args.n, args.seed, args.cols, args.scale, device,
                           args.image, args.mask)
    else:
        h, w = interpolation_figure(args.run, args.out, args.seed, args.steps, args.method, args.scale, device)
    log.info("wrote %s (%dx%d px)", args.out, w, h)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.set_defaults(func=_command)
    return run_cli(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
