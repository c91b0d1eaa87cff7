"""Configuration of SIV-GAN / OSMIS (one model, masks optional).

Defaults are the thesis values; where the official implementation (reference notes,
"one-shot-synthesis") differs, the official value is available as an option and the
field comment says so. ``num_mask_classes == 0`` means SIV-GAN (no masks, thesis Ch. 5);
``> 0`` means OSMIS (thesis Ch. 6) with that many mask channels (background = 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ConfigError
from ..utils.dataclass_config import from_dict, to_dict

_CHOICES = {
    "dr_space": ("feature", "image", "off"),
    "dr_normalisation": ("thesis", "official"),
    "da_set": ("siv", "ada"),
    "loss_normalisation": ("thesis", "official"),
    "branches": ("both", "content", "layout", "none"),
    "regularization": ("dr", "zcr", "ds", "none"),
    # Thesis Table 6.3 (l.1798); the variants are defined in gan_core/nets/osmis.py (MASK_SUPERVISION).
    "mask_supervision": ("mca", "none", "concat", "projection", "d_m"),
}

# Spellings used by the transcribed thesis tables (workflow settings) -> canonical values.
_ALIASES = {
    "mask_supervision": {"input_concat": "concat", "semanticgan_dm": "d_m", "semanticgan_d_m": "d_m"},
    "dr_space": {"features": "feature"},
}


@dataclass
class OSMISConfig:
    # --- architecture ---------------------------------------------------------------
    ch_G: int = 32                 # reference notes §2.3 (--ch_G 32): G widths [8,8,8,8,8,8,8,4,2,1] x ch_G
    ch_D: int = 32                 # reference notes §2.4 (--ch_D 32): D widths [1,2,4,8,8,8,8,8,8] x ch_D
    noise_dim: int = 64            # thesis l.1456: "The latent vector z, of length 64"
    max_size: int = 1024           # reference notes §2.2 (--max_size 1024): bound on the longer side
    image_size: tuple[int, int] | None = None  # (H, W) to resize the input to first; None = the image's size.
    #                                thesis l.1756: OSMIS on DAVIS uses 640x384 (set in config.yaml)
    n_low_level: int | None = None  # None = auto (reference notes §2.2 table); thesis l.1460 says 3 (at 256^2),
    #                                 l.1800 says 4 for OSMIS at 640x384 (the auto value there). Tables 5.6 / 6.4
    #                                 ablate 1..6 / 1..5 with the total D depth fixed
    noise_shape: tuple[int, int] | None = None  # None = auto (reference notes §2.2: round(side / 2^(g-1)));
    #                                 thesis l.1456: "broadcasted to 3x5, which can be adjusted to closer fit
    #                                 the shape of a training sample". An override changes the training
    #                                 resolution to noise_shape * 2^(g-1) (g from the auto rule)
    num_mask_classes: int = 0      # 0 = SIV-GAN; else N mask channels incl. background (thesis l.1711);
    #                                derived from the mask by the trainer when left at 0 and a mask is given
    # --- objective --------------------------------------------------------------------
    lambda_dr: float = 0.15        # thesis l.1462: lambda = 0.15 for L_DR (Table 5.5 ablates 0, 0.05, 0.5);
    #                                also the strength of the zCR / DS alternatives (the thesis gives none)
    regularization: str = "dr"     # thesis Table 5.4 (l.1564): "dr" (Eq. 5.3), "zcr" (Zhao et al. 2021,
    #                                generator term only), "ds" (Yang et al. 2019), "none"; see losses/osmis.py
    dr_space: str = "feature"      # thesis l.1446: feature space (Table 5.4 ablates image space); "off" = no DR
    zcr_sigma: float = 0.03        # zCR latent perturbation std (Zhao et al. 2021's sigma_noise; not in the thesis)
    ds_tau: float | None = None    # DS bound tau of Yang et al. 2019 (None = unbounded; the images are tanh-bounded)
    dr_normalisation: str = "thesis"  # thesis Eq. 5.3: mean over pairs and layers; "official": sum x 2/(L(L-1))
    #                                   with L = number of G blocks (reference notes §2.5 quirk)
    weight_low_level: float = 2.0  # thesis Eq. 5.2 (l.1436) / 6.1: 2 L_low-level
    weight_content: float = 1.0    # thesis Eq. 5.2 / 6.1
    weight_layout: float = 1.0     # thesis Eq. 5.2 / 6.1
    loss_normalisation: str = "thesis"  # thesis Eq. 5.1 (l.1430): mean over blocks within each branch;
    #                                     "official": every block sum divided by the total D block count
    #                                     with weights x0.5 (reference notes §2.5: 1.0/N_D, 0.5/N_D, 0.5/N_D)
    low_level_loss: bool = True    # thesis l.1436-1438 (Sec. 5.3.3 ablates L_low-level)
    branches: str = "both"         # thesis Sec. 5.2.1: content + layout branches (ablation: one or none)
    mask_supervision: str = "mca"  # thesis Sec. 6.2.3: masked content attention (Eq. 6.4-6.6). Table 6.3
    #                                baselines (l.1798), all with the SIV-GAN D_content: "none" (masks generated,
    #                                unsupervised), "concat" (masks concatenated to D's input images),
    #                                "projection" (Miyato & Koyama 2018 on the last D_low-level block),
    #                                "d_m" (SemanticGAN-style extra discriminator D_m on image + mask whose
    #                                gradients reach only G's mask branch)
    weight_d_m: float = 1.0        # weight of the D_m loss ("d_m" only); not stated in the thesis
    # --- feature augmentation (FA), real inputs only --------------------------------------
    feature_augmentation: bool = True  # thesis l.1426
    prob_fa_content: float = 0.4   # thesis l.1460: FA with probability 0.4 at every D forward pass
    prob_fa_layout: float = 0.4    # thesis l.1460
    # --- differentiable augmentation (DA) ------------------------------------------------
    prob_da: float = 0.7           # thesis l.1460: probability 0.7 at each forward pass
    da_set: str = "siv"            # "siv": translation, cropping, rotation, hflip (thesis l.1460);
    #                                "ada": subset of Karras et al. 2020a for OSMIS (thesis l.1749)
    # --- OSMIS mask branch -----------------------------------------------------------------
    bernoulli_warmup: int = 15000  # thesis l.1749: P0 = 15000 (Eq. 6.3)
    # --- optimisation --------------------------------------------------------------------
    ema_decay: float = 0.9999      # thesis l.1749: EMA of G weights, decay 0.9999
    lr_g: float = 2e-4             # thesis l.1462
    lr_d: float = 2e-4             # thesis l.1462
    betas: tuple[float, float] = (0.5, 0.999)  # thesis l.1462
    batch_size: int = 5            # thesis l.1462: batch of 5 augmentations of the single image

    def __post_init__(self) -> None:
        for key, aliases in _ALIASES.items():
            setattr(self, key, aliases.get(getattr(self, key), getattr(self, key)))
        for key, allowed in _CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"OSMISConfig.{key}: {getattr(self, key)!r} is not one of {list(allowed)}")
        if self.image_size is not None:
            self.image_size = tuple(int(v) for v in self.image_size)
            if len(self.image_size) != 2 or min(self.image_size) < 1:
                raise ConfigError(f"OSMISConfig.image_size: expected (H, W) > 0, got {self.image_size}")
        if self.noise_shape is not None:
            self.noise_shape = tuple(int(v) for v in self.noise_shape)
            if len(self.noise_shape) != 2 or min(self.noise_shape) < 1:
                raise ConfigError(f"OSMISConfig.noise_shape: expected (h, w) >= 1, got {self.noise_shape}")
        if self.zcr_sigma <= 0:
            raise ConfigError("OSMISConfig.zcr_sigma must be > 0")
        if self.ds_tau is not None and self.ds_tau <= 0:
            raise ConfigError("OSMISConfig.ds_tau must be > 0 or null")
        self.betas = tuple(float(b) for b in self.betas)
        if self.batch_size < 1:
            raise ConfigError("OSMISConfig.batch_size must be >= 1")
        if self.num_mask_classes < 0 or self.num_mask_classes == 1:
            raise ConfigError("OSMISConfig.num_mask_classes must be 0 (no masks) or >= 2 (background + objects)")
        for key in ("prob_fa_content", "prob_fa_layout", "prob_da"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"OSMISConfig.{key} must lie in [0, 1]")
        if self.mask_supervision == "projection" and not self.low_level_loss:
            raise ConfigError("OSMISConfig: mask_supervision='projection' acts on the D_low-level decision, "
                              "which low_level_loss=False removes from the objective")
        if self.branches == "none" and not self.low_level_loss:
            raise ConfigError("OSMISConfig: branches='none' with low_level_loss=False leaves no adversarial loss")

    @property
    def with_masks(self) -> bool:
        return self.num_mask_classes > 0

    @property
    def supervision(self) -> str:
        """The effective mask supervision: "none" for SIV-GAN (no masks)."""
        return self.mask_supervision if self.with_masks else "none"

    @property
    def diversity_mode(self) -> str:
        """The effective generator regulariser: "dr_feature", "dr_image", "zcr", "ds" or "none"."""
        if self.lambda_dr == 0 or self.regularization == "none":
            return "none"
        if self.regularization == "dr":
            return "none" if self.dr_space == "off" else f"dr_{self.dr_space}"
        return self.regularization

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "") -> "OSMISConfig":
        return from_dict(cls, data, where=where or "OSMISConfig")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)
