"""One switch set for the semantic-synthesis GANs of thesis Chapter 4 and its ablations, and the two builders a
trainer calls: :func:`build_generator` and :func:`build_discriminator`.

Switches (rows of thesis Tables 4.8-4.11 and appendix Tables 10, 12):

=====================  =================================================================  ===================
switch                 values                                                             thesis
=====================  =================================================================  ===================
generator              oasis | spade_plus                                                 Table 4.8
discriminator          oasis_unet | ms_patchgan | patchgan | resnet_patchgan              Table 4.9
d_label_encoding       concat | projection | n_plus_1 | n_plus_1_balanced (None: default)  Table 4.10
vgg_loss, lambda_vgg   on/off, 10                                                         Tables 4.8-4.10, 12
feature_matching,      on/off, 10                                                         appendix Table 12
lambda_fm
mixing                 labelmix | cutmix | none                                           Table 4.11
noise_sampling         image | region | pixel | mix                                       appendix Table 10
=====================  =================================================================  ===================

3D noise on/off is ``oasis.no_3dnoise`` (OASIS G) / ``spade.noise_3d`` (SPADE+ G, Table 4.2); SPADE's image
encoder (VAE, the "SPADE+, Encoder" row of Table 4.2) is ``spade.encoder`` with ``spade.lambda_kld`` (the KLD
term, ``losses/spade.kld_loss``), allowed only with the SPADE+ generator and image-level noise sampling. The loss that
goes with each label encoding is in ``losses/semantic_gan.py`` (hinge for concat / projection, (N+1)-CE for
the N+1 encodings, plus feature matching, VGG and the mixing consistency term).

Defaults = OASIS (thesis Sec. 4.2): U-Net D with the balanced N+1 loss, LabelMix, image-level 3D noise, no
VGG, no feature matching. :meth:`SemanticGANConfig.spade_plus` gives the SPADE+ baseline (thesis l.1151):
SPADE G without encoder (``spade.encoder`` adds it), 2-scale PatchGAN with input concatenation, hinge loss,
VGG loss (Table 4.1 marks VGG for SPADE+; Table 4.8 turns it off), no feature matching, no mixing, EMA
(``spade.ema_decay``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..utils.dataclass_config import from_dict, to_dict
from .oasis import OASISDiscriminator, OASISGenerator
from .oasis_config import OASISConfig
from .patchgan import LABEL_ENCODINGS, NLayerPatchGAN, ResNetPatchGAN, SemanticDiscriminator
from .spade import SPADEGenerator
from .spade_config import SPADEConfig

GENERATORS = ("oasis", "spade_plus")
DISCRIMINATORS = ("oasis_unet", "ms_patchgan", "patchgan", "resnet_patchgan")
MIXINGS = ("labelmix", "cutmix", "none")
NOISE_SAMPLING = ("image", "region", "pixel", "mix")
# the encoding each D is used with when none is given: OASIS = balanced N+1 (thesis Sec. 4.2.2); the PatchGAN
# family = SPADE's input concatenation (thesis l.1320 "input concatenation, as in SPADE")
DEFAULT_ENCODING = {"oasis_unet": "n_plus_1_balanced", "ms_patchgan": "concat", "patchgan": "concat",
                    "resnet_patchgan": "concat"}


@dataclass
class SemanticGANConfig:
    generator: str = "oasis"             # Table 4.8 "G" column
    discriminator: str = "oasis_unet"    # Table 4.9 "D architecture"
    d_label_encoding: str | None = None  # Table 4.10; None = DEFAULT_ENCODING[discriminator]
    vgg_loss: bool = False               # OASIS: adversarial supervision only (thesis l.1296-1298)
    lambda_vgg: float = 10.0             # reference notes §1.5 (OASIS lambda_vgg 10) and §3 (SPADE 10)
    feature_matching: bool = False       # OASIS: off; SPADE+ drops it (thesis l.1151)
    lambda_fm: float = 10.0              # reference notes §3 (SPADE lambda_feat 10)
    mixing: str = "labelmix"             # Table 4.11 ("No CR" = none)
    lambda_mixing: float | None = None   # None = oasis.lambda_labelmix (thesis l.1121: 5 / 10)
    mixing_per_image: bool = False       # one draw for the whole batch (official LabelMix, notes §1.4)
    noise_sampling: str = "image"        # appendix Table 10; "image" is the OASIS default (thesis l.3272)
    # --- PatchGAN family (reference notes §3: num_D 2, n_layers_D 4, ndf 64, spectralinstance) ------
    num_d: int = 2                       # scales of ms_patchgan (the single "patchgan" always has 1)
    n_layers_d: int = 4
    ndf: int = 64
    patch_norm: str = "instance"
    patch_spectral: bool = True
    vgg_input_norm: str = "none"         # SPADE: [-1, 1] images straight into VGG (losses/spade.py)
    # --- the networks' own settings -------------------------------------------------------------
    oasis: OASISConfig = field(default_factory=OASISConfig)  # OASIS G / U-Net D, N+1 loss, LabelMix lambda
    spade: SPADEConfig = field(default_factory=SPADEConfig)  # SPADE+ G

    def __post_init__(self) -> None:
        if isinstance(self.oasis, Mapping):
            self.oasis = OASISConfig.from_dict(self.oasis)
        if isinstance(self.spade, Mapping):
            self.spade = SPADEConfig.from_dict(self.spade)
        for key, allowed in (("generator", GENERATORS), ("discriminator", DISCRIMINATORS),
                             ("mixing", MIXINGS), ("noise_sampling", NOISE_SAMPLING),
                             ("patch_norm", ("instance", "none")), ("vgg_input_norm", ("none", "imagenet"))):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"SemanticGANConfig.{key}: {getattr(self, key)!r} is not one of {list(allowed)}")
        if self.d_label_encoding is None:
            self.d_label_encoding = DEFAULT_ENCODING[self.discriminator]
        if self.d_label_encoding not in LABEL_ENCODINGS:
            raise ConfigError(f"SemanticGANConfig.d_label_encoding: {self.d_label_encoding!r} is not one of "
                              f"{list(LABEL_ENCODINGS)}")
        if self.lambda_mixing is None:
            self.lambda_mixing = float(self.oasis.lambda_labelmix)
        for key in ("lambda_vgg", "lambda_fm", "lambda_mixing"):
            if getattr(self, key) < 0:
                raise ConfigError(f"SemanticGANConfig.{key} must be >= 0")
        if self.num_d < 1 or self.n_layers_d < 1 or self.ndf < 1:
            raise ConfigError("SemanticGANConfig: num_d, n_layers_d and ndf must be >= 1")
        if self.generator == "spade_plus" and self.spade.output_size != self.oasis.output_size:
            raise ConfigError(f"SemanticGANConfig: SPADE+ output {self.spade.output_size} differs from the "
                              f"dataset size {self.oasis.output_size}; set spade.dataset like oasis.dataset")
        if self.spade.encoder and self.generator != "spade_plus":
            raise ConfigError("SemanticGANConfig: spade.encoder (SPADE's image encoder) needs generator "
                              "'spade_plus'")
        if self.spade.encoder and self.noise_sampling != "image":
            raise ConfigError("SemanticGANConfig.noise_sampling: the SPADE+ encoder's z is one vector per image; "
                              "use 'image'")
        if self.generator == "oasis" and self.noise_sampling != "image" and self.oasis.no_3dnoise:
            raise ConfigError("SemanticGANConfig.noise_sampling needs 3D noise (oasis.no_3dnoise is set)")

    @classmethod
    def spade_plus(cls, dataset: str = "ade20k", **overrides: Any) -> "SemanticGANConfig":
        """The SPADE+ baseline (thesis l.1151; see module doc). ``overrides`` replace any switch."""
        base: dict[str, Any] = dict(generator="spade_plus", discriminator="ms_patchgan", d_label_encoding="concat",
                                    vgg_loss=True, feature_matching=False, mixing="none",
                                    oasis=OASISConfig(dataset=dataset), spade=SPADEConfig(dataset=dataset))
        base.update(overrides)
        return cls(**base)

    @property
    def adversarial_loss(self) -> str:
        """"hinge" (concat / projection, SPADE's gan_mode; our choice for projection, which the thesis does not
        specify) or "n_plus_1" (the N+1 encodings)."""
        return "n_plus_1" if self.d_label_encoding.startswith("n_plus_1") else "hinge"

    @property
    def class_balancing(self) -> str:
        """Balancing mode of the N+1 loss: the OASIS one for "n_plus_1_balanced", "none" for "n_plus_1"."""
        return self.oasis.class_balancing if self.d_label_encoding == "n_plus_1_balanced" else "none"

    @property
    def uses_encoder(self) -> bool:
        """SPADE+ G with SPADE's image encoder: G encodes the real image in training and adds the KLD term."""
        return self.generator == "spade_plus" and self.spade.encoder

    @property
    def ema_decay(self) -> float:
        return float(self.spade.ema_decay if self.generator == "spade_plus" else self.oasis.ema_decay)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "") -> "SemanticGANConfig":
        return from_dict(cls, data, where=where or "SemanticGANConfig")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def build_generator(cfg: SemanticGANConfig, n_classes: int) -> nn.Module:
    """The generator selected by ``cfg.generator`` for one-hot label maps with ``n_classes`` channels;
    ``forward(label, z=None, noise_mode="image", region_mask=None, generator=None)`` for both; the SPADE+ G
    with ``spade.encoder`` also takes ``image=`` (real images to encode) and ``return_posterior=True``."""
    if cfg.generator == "oasis":
        return OASISGenerator(dataclasses.replace(cfg.oasis, semantic_nc=int(n_classes)))
    return SPADEGenerator(dataclasses.replace(cfg.spade, semantic_nc=int(n_classes)))


def build_discriminator(cfg: SemanticGANConfig, n_classes: int) -> SemanticDiscriminator:
    """The discriminator of ``cfg.discriminator`` with the label encoding ``cfg.d_label_encoding``;
    ``forward(image, one_hot_label)`` -> ``patchgan.DOutput`` (per-scale logits and features)."""
    n = int(n_classes)
    enc = cfg.d_label_encoding
    in_ch = 3 + n if enc == "concat" else 3
    out_ch = n + 1 if enc.startswith("n_plus_1") else 1
    if cfg.discriminator == "oasis_unet":
        nets = [OASISDiscriminator(dataclasses.replace(cfg.oasis, semantic_nc=n), in_channels=in_ch,
                                   out_channels=out_ch)]
    elif cfg.discriminator == "resnet_patchgan":
        nets = [ResNetPatchGAN(in_ch, out_ch, cfg.oasis.d_channels)]
    else:
        scales = cfg.num_d if cfg.discriminator == "ms_patchgan" else 1
        nets = [NLayerPatchGAN(in_ch, out_ch, cfg.ndf, cfg.n_layers_d, cfg.patch_norm, cfg.patch_spectral)
                for _ in range(scales)]
    return SemanticDiscriminator(nets, enc, n)


def pick_noise_mode(cfg: SemanticGANConfig, generator: torch.Generator | None = None) -> str:
    """The 3D-noise sampling mode of one training step (appendix Table 10, thesis l.3272): "image", "region"
    and "pixel" as they are; "mix" flips a coin between image- and region-level every step."""
    if cfg.noise_sampling != "mix":
        return cfg.noise_sampling
    dev = generator.device if generator is not None else None
    return "region" if int(torch.randint(0, 2, (1,), generator=generator, device=dev).item()) else "image"
