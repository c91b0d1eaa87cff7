"""Drawing samples from a trained (EMA) OSMIS / SIV-GAN generator and writing them to disk.

Layout written by :func:`write_samples`::

    out_dir/images/000.png ...        RGB PNGs
    out_dir/masks/000.png ...         DAVIS-palette indexed PNGs (argmax labels; OSMIS only)
    out_dir/samples.json              {"n": ..., "samples": [{"image": "images/000.png", "mask": ...}]}

Paths in samples.json are relative to ``out_dir``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..utils.atomic import write_json
from ..utils.images import write_image, write_mask


@torch.no_grad()
def generate(generator: torch.nn.Module, n: int, seed: int, batch: int = 10,
             device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
    """n samples from ``generator`` (put in eval mode: no SN power iteration) with noise drawn from a
    CPU generator seeded with ``seed`` (the same z on every device).

    Returns images (n, 3, H, W) float in [-1, 1] and masks (n, H, W) int64 argmax labels (or None),
    both on the CPU.
    """
    was_training = generator.training
    generator.eval()
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    z_all = torch.randn(n, generator.noise_dim, 1, 1, generator=gen)
    images, masks = [], []
    for start in range(0, n, batch):
        out = generator(z_all[start:start + batch].to(device), features=False)
        images.append(out.images[-1].float().clamp(-1, 1).cpu())
        if out.masks is not None:
            masks.append(out.masks.argmax(dim=1).cpu())
    generator.train(was_training)
    return torch.cat(images), (torch.cat(masks) if masks else None)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(n, 3, H, W) in [-1, 1] -> (n, H, W, 3) uint8."""
    x = ((images.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def write_samples(images: torch.Tensor, masks: torch.Tensor | None, out_dir: str | Path,
                  meta: Mapping[str, Any] | None = None) -> Path:
    """Write images (and masks) as PNGs plus ``samples.json`` (written last, atomically). Returns its path."""
    out_dir = Path(out_dir)
    imgs = to_uint8(images)
    rows = []
    for i, img in enumerate(imgs):
        row = {"image": f"images/{i:03d}.png"}
        write_image(out_dir / row["image"], img)
        if masks is not None:
            row["mask"] = f"masks/{i:03d}.png"
            write_mask(out_dir / row["mask"], masks[i].numpy().astype(np.int64), palette=True)
        rows.append(row)
    path = out_dir / "samples.json"
    write_json(path, {"n": len(rows), "with_masks": masks is not None, "samples": rows, **dict(meta or {})})
    return path
