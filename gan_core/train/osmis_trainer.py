"""Training SIV-GAN / OSMIS on one image (and optionally its mask) or, for SIV-GAN's Single Video
setting (thesis l.1468-1470), on all frames of a video; plugs into ``run_training``.

One iteration (reference notes §2.5, thesis Sec. 5.2.3 / 6.3.1):

1. G step: z -> G -> DA(images, masks) -> D(fake) -> adversarial loss with "real" targets
   (Eq. 5.2 / 6.1, object loss Eq. 6.5 with the generated masks) - lambda * DR (Eq. 5.3), or
   one of the Table 5.4 alternatives (zCR, DS; ``cfg.regularization``).
2. D step: DA(real batch) -> D(real, with FA) -> real loss; new z -> G (no grad) -> DA ->
   D(fake) -> fake loss; one Adam step on the sum.
3. EMA of the generator weights (decay 0.9999, thesis l.1749).

The batch consists of ``batch_size`` augmentations of the single training image / mask; with several
training images (video frames) each batch element is a frame drawn uniformly with replacement
(thesis l.1462: "different augmentations of a single image or of video frames").
All random numbers come from the torch generators, which the loop checkpoints, so a
resumed run reproduces an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.profiler import record_function

from ..augment.diffaug import apply_params, sample_params
from ..errors import ConfigError, DataError
from ..losses.osmis import adversarial_losses, diversity_distance, ds_distance, zcr_distance
from ..nets.osmis import (MIN_IMAGE_SIDE, Architecture, OSMISDiscriminator, OSMISGenerator, auto_architecture,
                          bound_size, to_device)
from ..nets.osmis_config import OSMISConfig
from ..sample.generate import generate

VOID_LABEL = 255  # DAVIS void pixels; mapped to background (label 0)


def resolve_mask_classes(cfg: OSMISConfig, mask: np.ndarray | None, source: str = "<mask>"
                         ) -> tuple[OSMISConfig, np.ndarray | None]:
    """Validate the label map and fix ``cfg.num_mask_classes`` (ids 0..K -> K+1 channels).

    No mask -> SIV-GAN (``num_mask_classes`` must be 0). Void (255) pixels become background.
    """
    if mask is None:
        if cfg.num_mask_classes:
            raise ConfigError(f"num_mask_classes={cfg.num_mask_classes} but no mask was given")
        return cfg, None
    mask = np.asarray(mask)
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise DataError(source, f"mask must be an integer (H, W) label map, got {mask.dtype} {mask.shape}")
    mask = np.where(mask == VOID_LABEL, 0, mask).astype(np.int64)
    if mask.min() < 0:
        raise DataError(source, f"mask has negative label {int(mask.min())}")
    top = int(mask.max())
    if top == 0:
        raise DataError(source, "mask is empty (only background label 0)")
    if cfg.num_mask_classes == 0:
        cfg = dataclasses.replace(cfg, num_mask_classes=top + 1)
    elif top >= cfg.num_mask_classes:
        raise DataError(source, f"mask id {top} >= configured num_mask_classes={cfg.num_mask_classes} "
                                f"(ids must lie in 0..{cfg.num_mask_classes - 1})")
    return cfg, mask


def training_architecture(cfg: OSMISConfig, height: int, width: int, source: str = "<image>") -> Architecture:
    """The auto architecture for an input of (height, width) (or cfg.image_size), with size checks."""
    h, w = cfg.image_size if cfg.image_size is not None else (height, width)
    bh, bw = bound_size(h, w, cfg.max_size)
    if min(bh, bw) < MIN_IMAGE_SIDE:
        raise DataError(source, f"image of {bh}x{bw} px (after image_size/max_size) is smaller than the minimum "
                                f"side {MIN_IMAGE_SIDE} px (3 * 2^(g-1) for the smallest generator depth g=5)")
    try:
        return auto_architecture(h, w, cfg.max_size, cfg.n_low_level, cfg.noise_shape)
    except ConfigError as exc:
        raise DataError(source, str(exc)) from exc


def _as_frames(image, source) -> tuple[list[np.ndarray], list[str]]:
    """One (H, W, 3) uint8 image, or a sequence / (N, H, W, 3) array of them, with their source names."""
    if isinstance(image, np.ndarray) and image.ndim == 4:
        frames = list(image)
    elif isinstance(image, (list, tuple)):
        frames = [np.asarray(f) for f in image]
    else:
        frames = [np.asarray(image)]
    if not frames:
        raise DataError(source if isinstance(source, str) else "<images>", "no training images")
    if isinstance(source, str):
        sources = [source] if len(frames) == 1 else [f"{source}[{i}]" for i in range(len(frames))]
    else:
        sources = [str(s) for s in source]
        if len(sources) != len(frames):
            raise ValueError(f"{len(sources)} source names for {len(frames)} images")
    for f, src in zip(frames, sources):
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
            raise DataError(src, f"image must be uint8 (H, W, 3), got {f.dtype} {f.shape}")
    return frames, sources


class OSMISTrainer:
    """Trainer protocol of ``gan_core.train.loop`` for SIV-GAN (mask None) or OSMIS (mask given)."""

    def __init__(self, cfg: OSMISConfig, image: np.ndarray | Sequence[np.ndarray], mask: np.ndarray | None = None,
                 device: torch.device | str = "cpu", amp_bf16: bool = False, channels_last: bool = False,
                 source: str | Sequence[str] = "<image>", mask_source: str = "<mask>"):
        frames, sources = _as_frames(image, source)
        if len(frames) > 1 and mask is not None:
            raise ConfigError("several training images with a mask: OSMIS trains on one image-mask pair; "
                              "multi-frame training is SIV-GAN's Single Video setting (no masks)")
        image, source = frames[0], sources[0]
        if mask is not None and tuple(np.shape(mask)) != image.shape[:2]:
            raise DataError(mask_source, f"mask size {np.shape(mask)} differs from image size {image.shape[:2]}")
        cfg, mask = resolve_mask_classes(cfg, mask, mask_source)
        self.cfg = cfg
        self.arch = training_architecture(cfg, image.shape[0], image.shape[1], source)
        self.device = torch.device(device)
        self.amp_bf16 = bool(amp_bf16)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

        # --- the single training example at the training resolution -------------------------
        res = tuple(self.arch.resolution)
        # every frame is resized to the architecture's resolution (set by the first frame / image_size)
        img = torch.cat([F.interpolate(torch.tensor(f).permute(2, 0, 1)[None].float() / 127.5 - 1.0, size=res,
                                       mode="bilinear", align_corners=False, antialias=True) for f in frames])
        img = img.clamp(-1, 1)
        self.n_real = img.shape[0]
        pyramid = [img]
        for _ in range(self.arch.n_low_level - 1):  # MSG inputs of real images (reference notes §2.4)
            pyramid.insert(0, F.avg_pool2d(pyramid[0], 2))
        self.real_images = [p.to(self.device).contiguous(memory_format=self.memory_format) for p in pyramid]
        self.real_mask = None
        if mask is not None:
            lab = F.interpolate(torch.from_numpy(mask)[None, None].float(), size=res, mode="nearest-exact")
            onehot = F.one_hot(lab[0, 0].long(), cfg.num_mask_classes).permute(2, 0, 1)[None].float()
            self.real_mask = onehot.to(self.device)

        # --- models and optimisers ---------------------------------------------------------------
        self.G = OSMISGenerator(cfg, self.arch).to(self.device, memory_format=self.memory_format)
        self.D = OSMISDiscriminator(cfg, self.arch).to(self.device, memory_format=self.memory_format)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=cfg.betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
        self._g_params = list(self.G.parameters())
        self._ema_params = list(self.G_ema.parameters())
        self._g_buffers = list(self.G.buffers())
        self._ema_buffers = list(self.G_ema.buffers())

    # ------------------------------------------------------------------------------------------
    def _autocast(self):
        if not self.amp_bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _noise(self) -> torch.Tensor:
        return torch.randn(self.cfg.batch_size, self.cfg.noise_dim, 1, 1, device=self.device)

    def _augment(self, images: list[torch.Tensor], masks: torch.Tensor | None):
        """DA (``diffaug.augment``) with its CPU-drawn parameters moved to the device once and
        asynchronously (``to_device``), instead of one synchronising copy per scale."""
        if self.cfg.prob_da <= 0.0:
            return list(images), masks
        with record_function("osmis.augment"):
            h, w = images[-1].shape[-2:]
            p = sample_params(images[-1].shape[0], h, w, self.cfg.da_set, self.cfg.prob_da)
            p.theta = to_device(p.theta, self.device)
            if p.color is not None:
                p.color, p.offset = to_device(p.color, self.device), to_device(p.offset, self.device)
            return apply_params(images, masks, p)

    def _fake_inputs(self, out):
        return self._augment(out.images[-self.arch.n_low_level:], out.masks)

    def _diversity(self, mode: str, z: torch.Tensor, out) -> tuple[str, torch.Tensor]:
        """The generator regulariser's distance (to be maximised) and its log name."""
        if mode == "dr_feature":  # thesis Eq. 5.3
            return "G_dr_distance", diversity_distance(out.features, self.cfg.dr_normalisation)
        if mode == "dr_image":    # thesis l.1446 / Table 5.4 "DR (im. space)", as Choi et al. 2020
            return "G_dr_distance", diversity_distance([out.images[-1]], self.cfg.dr_normalisation)
        if mode == "zcr":         # Zhao et al. 2021, generator term only (thesis l.1564)
            z2 = z + self.cfg.zcr_sigma * torch.randn_like(z)
            return "G_zcr_distance", zcr_distance(out.images[-1], self.G(z2, features=False).images[-1])
        if mode == "ds":          # Yang et al. 2019
            return "G_ds_distance", ds_distance(out.images[-1], z, self.cfg.ds_tau)
        raise ConfigError(f"unknown diversity mode {mode!r}")

    def train_step(self, iteration: int) -> dict[str, float]:
        names: list[str] = []
        values: list[torch.Tensor] = []
        mode = self.cfg.diversity_mode

        # --- 1. generator step -----------------------------------------------------------------
        with record_function("osmis.G_step"):
            self._generator_step(iteration, mode, names, values)
        # --- 2. discriminator step -------------------------------------------------------------
        with record_function("osmis.D_step"):
            self._discriminator_step(iteration, names, values)
        # --- 3. EMA ----------------------------------------------------------------------------
        with record_function("osmis.ema"):
            self._ema_update()
        with record_function("osmis.log_sync"):  # the only host-device synchronisation of a step
            return dict(zip(names, torch.stack([v.float() for v in values]).tolist()))

    def _generator_step(self, iteration: int, mode: str, names: list[str], values: list[torch.Tensor]) -> None:
        cfg = self.cfg
        self.D.requires_grad_(False)
        with self._autocast():
            z = self._noise()
            out = self.G(z, features=mode == "dr_feature")
            images, masks = self._fake_inputs(out)
            d_out = self.D(images, masks, real=False, iteration=iteration)
            losses = adversarial_losses(d_out, True, cfg, masks)
            loss_g = sum(losses.values())
            if mode != "none":
                name, dist = self._diversity(mode, z, out)
                loss_g = loss_g - cfg.lambda_dr * dist
                names.append(name)
                values.append(dist.detach())
        self.opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_G.step()
        self.D.requires_grad_(True)
        for k, v in losses.items():
            names.append(f"G_{k}")
            values.append(v.detach())
        names.append("G_total")
        values.append(loss_g.detach())

    def _discriminator_step(self, iteration: int, names: list[str], values: list[torch.Tensor]) -> None:
        cfg, b = self.cfg, self.cfg.batch_size
        if self.n_real == 1:
            real_images = [x.expand(b, -1, -1, -1) for x in self.real_images]
        else:  # Single Video: a batch of frames drawn with replacement (CPU generator, checkpointed)
            idx = torch.randint(self.n_real, (b,)).to(self.device, non_blocking=True)
            real_images = [x.index_select(0, idx) for x in self.real_images]
        real_mask = self.real_mask.expand(b, -1, -1, -1) if self.real_mask is not None else None
        with self._autocast():
            r_images, r_masks = self._augment(real_images, real_mask)
            d_real = self.D(r_images, r_masks, real=True, iteration=iteration)
            l_real = adversarial_losses(d_real, True, cfg, r_masks)
            with torch.no_grad():
                fake = self.G(self._noise(), features=False)
            f_images, f_masks = self._fake_inputs(fake)
            d_fake = self.D(f_images, f_masks, real=False, iteration=iteration)
            l_fake = adversarial_losses(d_fake, False, cfg, f_masks)
            loss_d = sum(l_real.values()) + sum(l_fake.values())
        self.opt_D.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_D.step()
        for prefix, ls in (("D_real", l_real), ("D_fake", l_fake)):
            for k, v in ls.items():
                names.append(f"{prefix}_{k}")
                values.append(v.detach())
        names.append("D_total")
        values.append(loss_d.detach())

    @torch.no_grad()
    def _ema_update(self) -> None:
        """EMA of the parameters; buffers (spectral-norm u, v) are copied from G."""
        torch._foreach_lerp_(self._ema_params, self._g_params, 1.0 - self.cfg.ema_decay)
        if self._ema_buffers:  # one fused copy instead of one kernel per buffer
            torch._foreach_copy_(self._ema_buffers, self._g_buffers)

    # ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])

    def sample(self, n: int, seed: int, batch: int = 10) -> tuple[torch.Tensor, torch.Tensor | None]:
        """n samples of the EMA generator: images (n, 3, H, W) in [-1, 1] and argmax masks (n, H, W)
        (None for SIV-GAN), on the CPU."""
        return generate(self.G_ema, n, seed, batch, self.device)
