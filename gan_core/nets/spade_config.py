"""Configuration of the SPADE+ baseline generator and its training hyper-parameters (thesis Chapter 4).

SPADE+ (thesis l.1151): "For a fair comparison to the baseline SPADE, we additionally train this model
without the feature matching loss and using EMA ... at the test phase. We refer to this improved baseline as
SPADE+". Its generator is the SPADE generator WITHOUT the image encoder: the downsampled label map is the
input of ``fc`` (reference notes §3: "fc = Conv3x3(semantic_nc -> 16nf) on the downsampled segmap"). Table
4.2 also trains SPADE+ "with 3D noise" (thesis l.1173): ``noise_3d=True`` concatenates the OASIS 3D noise to
the label map as in OASIS (thesis l.1093). The "SPADE+, Encoder" row of Table 4.2 (thesis l.1161) trains
SPADE+ with SPADE's image encoder (``--use_vae``): ``encoder=True`` (``nets/spade_encoder.py``; the generator's
``fc`` becomes a Linear layer from z, z comes from the encoder of the real image during training and from
N(0, I) at test time; the KLD term with ``lambda_kld`` joins the G loss).

Why the encoder switch lives here and not in ``SemanticGANConfig``: like ``noise_3d`` it is a property of the
SPADE+ generator (it changes its ``fc`` layer and its input), ``build_generator`` hands only this config to the
generator, and the Table 4.2 variants are spelt the same way (``spade: {noise_3d: true}`` /
``spade: {encoder: true}``). ``SemanticGANConfig`` rejects ``spade.encoder`` with another generator.

Architecture facts: reference notes §3 (NVlabs/SPADE @ fecacc9, read for facts only; CC BY-NC-SA code is not
copied). Label layout: as ``oasis_config.DATASET_LAYOUT`` (semantic_nc = classes + dontcare). SPADE itself
adds an instance-edge channel for Cityscapes and COCO-Stuff (reference notes §3: COCO semantic_nc 184), which
OASIS and our data loaders do not use; pass ``semantic_nc`` explicitly (Cityscapes 36, COCO 184) for the
official channel count.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ConfigError
from ..utils.dataclass_config import from_dict, to_dict
from .oasis_config import DATASET_LAYOUT

# reference notes §3: Cityscapes uses num_upsampling_layers='more' (6 upsamplings), the others 'normal' (5)
UPSAMPLING_LAYERS = {"normal": 5, "more": 6}
DATASET_UPSAMPLING = {"ade20k": "normal", "cityscapes": "more", "coco": "normal", "lvis": "normal"}

_CHOICES = {
    "dataset": tuple(DATASET_LAYOUT),
    "num_upsampling_layers": (None,) + tuple(UPSAMPLING_LAYERS),
    "param_free_norm": ("batch", "instance"),
}


@dataclass
class SPADEConfig:
    dataset: str = "ade20k"        # label layout (oasis_config.DATASET_LAYOUT)
    # --- label maps / resolution -------------------------------------------------------------------
    semantic_nc: int | None = None  # None = DATASET_LAYOUT (ADE20K 151 = 150 classes + dontcare)
    crop_size: int | None = None   # generated width; None = DATASET_LAYOUT (thesis l.1112)
    aspect_ratio: float | None = None  # W / H; None = DATASET_LAYOUT
    # --- generator (reference notes §3) -----------------------------------------------------------
    ngf: int = 64                  # nf = 64; blocks 16,16,16,8,4,2,1 x nf (head_0, G_middle_0/1, up_0..up_3)
    num_upsampling_layers: str | None = None  # None = DATASET_UPSAMPLING ("more" for Cityscapes)
    spade_hidden: int = 128        # SPADE nhidden 128
    spade_ks: int = 3              # "spadesyncbatch3x3"
    param_free_norm: str = "batch"  # SyncBN(affine=False) ("spectralspadesyncbatch3x3")
    noise_3d: bool = False         # SPADE+ "3D noise" variant of Table 4.2 (thesis l.1173); off = plain SPADE+
    z_dim: int = 64                # 3D-noise channels when noise_3d (OASIS M = 64, thesis l.1121; our choice
    #                                to reuse the OASIS value: the thesis does not give one for SPADE+)
    # --- image encoder = SPADE's VAE (--use_vae; "SPADE+, Encoder" of Table 4.2, thesis l.1161) --------------
    encoder: bool = False          # off = plain SPADE+ (thesis l.1151: "SPADE+" has no encoder)
    encoder_z_dim: int = 256       # SPADE options/base_options.py --z_dim 256 (encoder.py fc_mu / fc_var: 256)
    encoder_size: int = 256        # SPADE encoder.py: the image is resized to 256 x 256 (nets/spade_encoder.py)
    lambda_kld: float = 0.05       # SPADE options/train_options.py --lambda_kld 0.05
    # --- optimisation (reference notes §3, SPADE defaults; the thesis gives none for SPADE+) --------------
    lr_g: float = 1e-4             # TTUR: lr 2e-4 / 2
    lr_d: float = 4e-4             # TTUR: lr 2e-4 * 2
    betas: tuple[float, float] = (0.0, 0.9)  # SPADE TTUR betas
    ema_decay: float = 0.9999      # thesis l.1151 adds EMA to SPADE+ without a decay; our choice: the OASIS
    #                                value (thesis l.1121, "0.9999")

    def __post_init__(self) -> None:
        for key, allowed in _CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"SPADEConfig.{key}: {getattr(self, key)!r} is not one of {list(allowed)}")
        for key, value in DATASET_LAYOUT[self.dataset].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.num_upsampling_layers is None:
            self.num_upsampling_layers = DATASET_UPSAMPLING[self.dataset]
        if self.semantic_nc is None or self.semantic_nc < 2:
            raise ConfigError(f"SPADEConfig.semantic_nc must be given (>= 2) for dataset {self.dataset!r}")
        self.betas = tuple(float(b) for b in self.betas)
        if self.ngf < 2 or self.spade_hidden < 1 or self.z_dim < 1:
            raise ConfigError("SPADEConfig: ngf must be >= 2, spade_hidden and z_dim >= 1")
        if self.encoder and self.noise_3d:
            raise ConfigError("SPADEConfig: encoder and noise_3d are two different sources of multi-modality "
                              "(Table 4.2 rows 'Encoder' / '3D noise'); set only one")
        if self.encoder_z_dim < 1 or self.lambda_kld < 0:
            raise ConfigError("SPADEConfig: encoder_z_dim must be >= 1 and lambda_kld >= 0")
        if self.encoder_size < 8 or self.encoder_size & (self.encoder_size - 1):
            raise ConfigError(f"SPADEConfig.encoder_size must be a power of 2 >= 8, got {self.encoder_size}")
        if self.spade_ks % 2 != 1:
            raise ConfigError("SPADEConfig.spade_ks must be odd")
        if self.init_size[0] < 1 or self.init_size[1] < 1:
            raise ConfigError(f"SPADEConfig: crop_size {self.crop_size} too small for "
                              f"{UPSAMPLING_LAYERS[self.num_upsampling_layers]} upsamplings")
        for key in ("lr_g", "lr_d", "ema_decay"):
            if getattr(self, key) < 0:
                raise ConfigError(f"SPADEConfig.{key} must be >= 0")

    @property
    def num_up(self) -> int:
        return UPSAMPLING_LAYERS[self.num_upsampling_layers]

    @property
    def init_size(self) -> tuple[int, int]:
        """(h, w) of ``fc``: w = crop // 2^num_up, h = round(w / aspect_ratio) (reference notes §3)."""
        w = int(self.crop_size) // 2 ** self.num_up
        return int(round(w / float(self.aspect_ratio))), w

    @property
    def output_size(self) -> tuple[int, int]:
        h, w = self.init_size
        return h * 2 ** self.num_up, w * 2 ** self.num_up

    @property
    def label_input_nc(self) -> int:
        """Channels of the conditioning map of ``fc`` and every SPADE: label (+ 3D noise)."""
        return self.semantic_nc + (self.z_dim if self.noise_3d else 0)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "") -> "SPADEConfig":
        return from_dict(cls, data, where=where or "SPADEConfig")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)
