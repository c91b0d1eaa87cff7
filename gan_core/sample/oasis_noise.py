"""3D-noise editing with a trained OASIS generator: global / local resampling and global / local latent
interpolation (thesis Sec. 4.3.4, l.1236-1246, Figs. 4.10 and 4.11).

The OASIS generator is conditioned on a per-pixel noise map z (B, M, H, W) concatenated with the label map
(thesis l.1093; ``nets/oasis.py``). Everything here edits that map and decodes it with the generator's own
``forward(label, z=map)``; the noise itself comes from the generator module's functions
(:func:`gan_core.nets.oasis.sample_noise`, :func:`gan_core.nets.oasis.resample_region`), never re-implemented.

* **Global resampling** (Fig. 4.10 rows 1/3): a new image-level noise vector everywhere ("the noise can be
  sampled globally for all pixels, varying the whole image", l.1242).
* **Local resampling** (Fig. 4.10 rows 2/4): a new image-level vector only where the region mask is 1, the
  base map unchanged elsewhere ("a noise vector can be re-sampled only for specified image regions", l.1242).
* **Global interpolation** (Fig. 4.11 rows 1/2): z_t = (1 - t) z_a + t z_b everywhere.
* **Local interpolation** (Fig. 4.11 rows 3/4): the same, inside the region only; z_a is kept outside.

Interpolation is **linear** (our reading of "interpolations in the latent space", l.1246; the thesis names
no scheme, the official code has none). The endpoints are copied, so t = 0 and t = 1 decode to exactly the
two endpoint samples.

Random numbers: every draw is made by a CPU ``torch.Generator`` seeded with ``mix_seed(seed, key, stream)``,
so a figure does not depend on the device or on the batch composition.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..data.semantic import mix_seed, one_hot
from ..errors import ConfigError
from ..nets.oasis import resample_region, sample_noise
from ..report.qualitative import interpolate_latents

# seed streams (independent draws for one (seed, key))
STREAM_BASE, STREAM_GLOBAL, STREAM_LOCAL = 0, 1, 2


@dataclass
class NoiseEditConfig:
    """Settings of the noise figures (thesis Figs. 4.10 / 4.11)."""

    n_samples: int = 4          # resamples per row (our choice; Fig. 4.10 shows a handful per row)
    steps: int = 5              # interpolation points, ends included (our choice)
    seed: int = 0
    local_mode: str = "image"   # "image": one new vector for the whole region (l.1242); "pixel": per pixel

    def __post_init__(self) -> None:
        if self.n_samples < 1:
            raise ConfigError(f"n_samples must be >= 1, got {self.n_samples}")
        if self.steps < 2:
            raise ConfigError(f"interpolation steps must be >= 2, got {self.steps}")
        if self.local_mode not in ("image", "pixel"):
            raise ConfigError(f"local_mode must be 'image' or 'pixel', got {self.local_mode!r}")


def _cpu_gen(*key: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(mix_seed(*key))


def z_dim_of(generator: nn.Module) -> int:
    """The generator's noise channels; a ConfigError for a generator without 3D noise."""
    cfg = generator.cfg
    if getattr(cfg, "no_3dnoise", False) or getattr(cfg, "noise_3d", True) is False:
        raise ConfigError("noise editing needs a generator with 3D noise (this run has none)")
    return int(cfg.z_dim)


def label_one_hot(generator: nn.Module, label: torch.Tensor) -> torch.Tensor:
    """(1 or B, H, W) label indices -> (B, N, H, W) one-hot on the CPU."""
    if label.dim() == 2:
        label = label[None]
    return one_hot(label.long().cpu(), generator.cfg.semantic_nc)


def base_noise(generator: nn.Module, oh: torch.Tensor, seed: int, key: int = 0) -> torch.Tensor:
    """The image-level noise map (1, M, H, W) of label map ``key`` (the generator's own ``sample_noise``)."""
    return sample_noise(oh[:1], z_dim_of(generator), "image", generator=_cpu_gen(seed, key, STREAM_BASE))


def global_resamples(generator: nn.Module, oh: torch.Tensor, n: int, seed: int, key: int = 0) -> torch.Tensor:
    """``n`` independent image-level noise maps (n, M, H, W): a new z everywhere (Fig. 4.10 rows 1/3)."""
    g = _cpu_gen(seed, key, STREAM_GLOBAL)
    return torch.cat([sample_noise(oh[:1], z_dim_of(generator), "image", generator=g) for _ in range(n)])


def local_resamples(z_base: torch.Tensor, region: torch.Tensor, n: int, seed: int, key: int = 0,
                    mode: str = "image") -> torch.Tensor:
    """``n`` maps (n, M, H, W) equal to ``z_base`` (1, M, H, W) outside ``region`` ((H, W) or (1, H, W), 1 =
    resample) and with new noise inside it (Fig. 4.10 rows 2/4; :func:`nets.oasis.resample_region`)."""
    g = _cpu_gen(seed, key, STREAM_LOCAL)
    mask = region.reshape(1, 1, *region.shape[-2:]).float()
    return torch.cat([resample_region(z_base, mask, mode, generator=g) for _ in range(n)])


def interpolate_global(z_a: torch.Tensor, z_b: torch.Tensor, steps: int) -> torch.Tensor:
    """(steps, M, H, W): linear interpolation z_a -> z_b everywhere, ends exactly z_a and z_b."""
    return interpolate_latents(z_a[0], z_b[0], steps, "linear")


def interpolate_local(z_a: torch.Tensor, z_b: torch.Tensor, region: torch.Tensor, steps: int) -> torch.Tensor:
    """(steps, M, H, W): linear z_a -> z_b inside ``region`` only, z_a (bit-exact) outside; the last map is
    z_b inside the region and z_a outside (= a local resample of z_a)."""
    mask = region.reshape(1, 1, *region.shape[-2:]).bool()
    full = interpolate_global(z_a, z_b, steps)
    return torch.where(mask, full, z_a.expand_as(full))


@torch.no_grad()
def decode(generator: nn.Module, oh: torch.Tensor, z_maps: torch.Tensor, batch: int = 8) -> torch.Tensor:
    """Images (n, 3, H, W) in [-1, 1] on the CPU of noise maps ``z_maps`` (n, M, H, W) for the one label map
    ``oh`` (1, N, H, W), in eval mode (the EMA generator after its BN refresh)."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    out = []
    for s in range(0, len(z_maps), batch):
        z = z_maps[s:s + batch].to(device)
        lab = oh[:1].to(device).expand(len(z), -1, -1, -1)
        out.append(generator(lab, z=z).float().clamp(-1, 1).cpu())
    generator.train(was_training)
    return torch.cat(out)


def pick_region(label: torch.Tensor, region_class: str | int = "auto", ignore: tuple[int, ...] = (0,)) -> int:
    """The class whose region is edited: an explicit class id (must be present), or "auto" = the largest
    class present other than ``ignore`` (dontcare 0; our choice). ValueError if none is present."""
    lab = label.reshape(-1).long()
    counts = torch.bincount(lab, minlength=int(lab.max()) + 1)
    if region_class != "auto":
        c = int(region_class)
        if c >= counts.numel() or counts[c] == 0:
            raise ValueError(f"class {c} is not present in the label map")
        return c
    for c in ignore:
        if c < counts.numel():
            counts[c] = 0
    if int(counts.max()) == 0:
        raise ValueError("the label map has no class besides the ignored ones")
    return int(counts.argmax())
