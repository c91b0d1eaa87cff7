"""Differentiable augmentation (DA) of multi-scale images and their masks.

One set of random parameters per sample is applied identically to every scale of the
image list and to the mask (geometric transforms as one affine map in normalised
coordinates, so the same map fits every scale). Images are resampled bilinearly, masks
with nearest sampling, so one-hot masks stay one-hot and soft masks stay distributions;
gradients flow to both. The same function is used for real and generated data, as the
thesis requires against leaking (thesis l.1460). Random numbers come from the CPU torch
generator (resumable and device-independent) and are moved to the data's device.

Sets (each transform is applied to a sample independently with probability ``prob``):

* ``"siv"`` -- SIV-GAN, thesis l.1460: horizontal flip, cropping (keep 75-100% and resize
  back), rotation (+-8 deg with an 80% centre zoom), translation (5-30% per axis, reflect
  fill). Magnitudes from the official kornia substitute (reference notes §2.6).
* ``"ada"`` -- OSMIS, thesis l.1749 ("the whole set of transformations" of Karras et al.
  2020a): a subset of the ADA pipeline with ADA's default strengths: x-flip, integer
  translation (+-12.5%), isotropic scale (log2-normal, std 0.2), arbitrary rotation,
  brightness (N(0, 0.2)), contrast (log2-normal, std 0.5), saturation (log2-normal,
  std 1). Colour transforms touch images only. Anisotropic scaling, fractional
  translation, 90-degree rotations, hue and luma flip are not implemented.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

DA_SETS = ("siv", "ada")


@dataclass
class AugmentParams:
    theta: torch.Tensor                  # (B, 2, 3) output -> input map in normalised coordinates
    color: torch.Tensor | None = None    # (B, 3, 3) colour matrix (images only)
    offset: torch.Tensor | None = None   # (B, 3) colour offset


def _bern(n: int, p: float) -> torch.Tensor:
    return (torch.rand(n) < p).float()


def _rot(angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    m = torch.zeros(angle.shape[0], 3, 3)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1], m[:, 2, 2] = c, -s, s, c, 1.0
    return m


def _scale(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(sx.shape[0], 3, 3)
    m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = sx, sy, 1.0
    return m


def _trans(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3).repeat(tx.shape[0], 1, 1)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _siv_geometry(b: int, h: int, w: int, p: float) -> torch.Tensor:
    """Output->input map in centred pixel units (x in [-w/2, w/2])."""
    one = torch.ones(b)
    flip = 1.0 - 2.0 * _bern(b, p)
    m = _scale(flip, one)
    # cropping: sample a window of relative size s in [0.75, 1] at a random position inside the image
    do = _bern(b, p)
    s = 1.0 - do * torch.rand(b) * 0.25
    cx = (torch.rand(b) * 2 - 1) * (1 - s) * w / 2
    cy = (torch.rand(b) * 2 - 1) * (1 - s) * h / 2
    m = _trans(cx, cy) @ _scale(s, s) @ m
    # rotation +-8 degrees, zoomed into the central 80%
    do = _bern(b, p)
    ang = do * (torch.rand(b) * 2 - 1) * math.radians(8.0)
    z = 1.0 - do * 0.2
    m = _rot(ang) @ _scale(z, z) @ m
    # translation by 5-30% of each side (random sign), reflection fill
    def shift(n: int, side: int) -> torch.Tensor:
        mag = (torch.rand(n) * 0.25 + 0.05) * side
        sign = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
        return _bern(n, p) * mag * sign
    return _trans(shift(b, w), shift(b, h)) @ m


def _ada_geometry(b: int, h: int, w: int, p: float) -> torch.Tensor:
    flip = 1.0 - 2.0 * _bern(b, p)
    m = _scale(flip, torch.ones(b))
    tx = _bern(b, p) * torch.round((torch.rand(b) * 2 - 1) * 0.125 * w)
    ty = _bern(b, p) * torch.round((torch.rand(b) * 2 - 1) * 0.125 * h)
    m = _trans(tx, ty) @ m
    s = torch.exp2(_bern(b, p) * torch.randn(b) * 0.2)
    m = _scale(s, s) @ m
    ang = _bern(b, p) * (torch.rand(b) * 2 - 1) * math.pi
    return _rot(ang) @ m


def _ada_color(b: int, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour matrix C and offset o with x' = C x + o on [-1, 1] images (ADA-style, about 0)."""
    bright = _bern(b, p) * torch.randn(b) * 0.2
    contrast = torch.exp2(_bern(b, p) * torch.randn(b) * 0.5)
    sat = torch.exp2(_bern(b, p) * torch.randn(b) * 1.0)
    v = torch.full((3,), 1.0 / math.sqrt(3.0))
    vv = torch.outer(v, v)
    sat_m = vv[None] + (torch.eye(3) - vv)[None] * sat[:, None, None]
    color = contrast[:, None, None] * sat_m
    offset = (contrast * bright)[:, None].expand(b, 3).clone()
    return color, offset


def sample_params(batch: int, height: int, width: int, kind: str = "siv", prob: float = 0.7) -> AugmentParams:
    """Draw per-sample parameters for images of full resolution (height, width)."""
    if kind not in DA_SETS:
        raise ValueError(f"unknown augmentation set {kind!r}; expected one of {DA_SETS}")
    geo = (_siv_geometry if kind == "siv" else _ada_geometry)(batch, height, width, prob)
    # centred pixel units -> normalised coordinates: theta = N^-1 M N with N = diag(w/2, h/2)
    n = torch.diag(torch.tensor([width / 2.0, height / 2.0, 1.0]))
    n_inv = torch.diag(torch.tensor([2.0 / width, 2.0 / height, 1.0]))
    theta = (n_inv @ geo @ n)[:, :2, :]
    color = offset = None
    if kind == "ada":
        color, offset = _ada_color(batch, prob)
    return AugmentParams(theta, color, offset)


def _warp(x: torch.Tensor, theta: torch.Tensor, mode: str) -> torch.Tensor:
    grid = F.affine_grid(theta.to(device=x.device, dtype=x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="reflection", align_corners=False)


def apply_params(images: list[torch.Tensor], masks: torch.Tensor | None, params: AugmentParams,
                 ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Apply ``params`` to every scale of ``images`` (bilinear) and to ``masks`` (nearest)."""
    out = []
    for img in images:
        x = _warp(img, params.theta, "bilinear")
        if params.color is not None:
            c = params.color.to(device=x.device, dtype=x.dtype)
            o = params.offset.to(device=x.device, dtype=x.dtype)
            x = torch.einsum("bij,bjhw->bihw", c, x) + o[:, :, None, None]
        out.append(x)
    if masks is not None:
        masks = _warp(masks, params.theta, "nearest")
    return out, masks


def augment(images: list[torch.Tensor], masks: torch.Tensor | None = None, kind: str = "siv",
            prob: float = 0.7) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Augment a batch of multi-scale images (low -> high resolution) and optional masks alike."""
    if prob <= 0.0:
        return list(images), masks
    h, w = images[-1].shape[-2:]
    return apply_params(images, masks, sample_params(images[-1].shape[0], h, w, kind, prob))
