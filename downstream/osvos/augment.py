""""Standard" OSVOS augmentation (thesis l.1845; reference notes downstream-protocols.md §1.2).

Official transforms: ``RandomHorizontalFlip`` (p = 0.5) then ``ScaleNRotate(rots=(-30, 30), scales=(.75, 1.25))``
-- a uniform rotation and a uniform scale about the image centre, bicubic for the image, nearest for the
mask, border filled with 0 (the mean pixel, since the image is mean-subtracted first).

Here flip, rotation and scale are composed into one affine map per sample and applied with a single
``grid_sample`` (no double interpolation), vectorised over the batch. All randomness comes from a
``torch.Generator`` so that a seed reproduces a run (the official code draws from Python ``random``
unseeded, reference notes §1.2).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def random_affine_params(n: int, generator: torch.Generator, rotation: tuple[float, float] = (-30.0, 30.0),
                         scale: tuple[float, float] = (0.75, 1.25), hflip_p: float = 0.5
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw (flip: bool[n], angle_deg: float[n], scale: float[n]) on the CPU from ``generator``."""
    u = torch.rand(n, 3, generator=generator, dtype=torch.float64)
    flip = u[:, 0] < hflip_p
    angle = rotation[0] + (rotation[1] - rotation[0]) * u[:, 1]
    scl = scale[0] + (scale[1] - scale[0]) * u[:, 2]
    return flip, angle, scl


def affine_theta(flip: torch.Tensor, angle_deg: torch.Tensor, scale: torch.Tensor, height: int, width: int
                 ) -> torch.Tensor:
    """(n,2,3) ``affine_grid`` matrices mapping output to input normalised coordinates.

    The forward map (input -> output) is: horizontal flip, then rotation by ``angle_deg`` (counter-clockwise
    on screen, as cv2.getRotationMatrix2D) and scaling by ``scale`` about the image centre, in pixel units.
    """
    a = torch.deg2rad(angle_deg.double())
    c, s = torch.cos(a), torch.sin(a)
    # forward pixel-offset map A = scale * [[c, s], [-s, c]] (y axis down); inverse = [[c, -s], [s, c]] / scale
    inv = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2) / scale.double()[:, None, None]
    d = torch.tensor([width / 2.0, height / 2.0], dtype=torch.float64)
    inv = inv * d[None, None, :] / d[None, :, None]  # D^-1 A^-1 D in normalised coordinates
    fl = torch.where(flip, -1.0, 1.0).double()
    inv = torch.cat([inv[:, :1] * fl[:, None, None], inv[:, 1:]], dim=1)  # flip the sampled input x
    return torch.cat([inv, torch.zeros(len(flip), 2, 1, dtype=torch.float64)], dim=2).float()


def apply_affine(images: torch.Tensor, masks: torch.Tensor, theta: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp images (bicubic) and masks (nearest) of shape (n,C,H,W) with ``theta``; outside pixels -> 0."""
    theta = theta.to(images.device)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    img = F.grid_sample(images.float(), grid, mode="bicubic", padding_mode="zeros", align_corners=False)
    msk = F.grid_sample(masks.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return img, msk


def standard_augment(images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator,
                     rotation: tuple[float, float] = (-30.0, 30.0), scale: tuple[float, float] = (0.75, 1.25),
                     hflip_p: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Independently flip/rotate/scale every sample of the batch (images already normalised: border 0 = mean)."""
    n, _, h, w = images.shape
    flip, angle, scl = random_affine_params(n, generator, rotation, scale, hflip_p)
    return apply_affine(images, masks, affine_theta(flip, angle, scl, h, w))
