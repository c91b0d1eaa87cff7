"""Configuration of OASIS (thesis Chapter 4).

Defaults are the thesis values (ADE20K setting); where the official implementation (reference notes §1,
"boschresearch/OASIS") differs, the official value is reachable through an option and the comment says so.
Per-dataset values left at ``None`` are resolved in ``__post_init__`` from ``DATASET_PRESETS`` using
``preset_source`` ("thesis" or "official").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ConfigError
from ..utils.dataclass_config import from_dict, to_dict

# Label layout per dataset (reference notes §1.6): semantic_nc = label_nc + 1 (label 0 = dontcare);
# crop_size is the generated WIDTH, aspect_ratio = W / H (reference notes §1.2).
DATASET_LAYOUT: dict[str, dict[str, Any]] = {
    "ade20k": {"semantic_nc": 151, "crop_size": 256, "aspect_ratio": 1.0},
    "cityscapes": {"semantic_nc": 35, "crop_size": 512, "aspect_ratio": 2.0},
    "coco": {"semantic_nc": 183, "crop_size": 256, "aspect_ratio": 1.0},
    # LVIS: thesis l.1119 "at the image resolution of 128x128"; the class count depends on the label export
    # (the official loader is unfinished, reference notes §1.6), so semantic_nc must be given explicitly.
    "lvis": {"crop_size": 128, "aspect_ratio": 1.0},
}

# Training hyper-parameters per dataset.
#  thesis l.1121: lambda_LM 5 (ADE20K, Cityscapes) / 10 (COCO-Stuff, LVIS); EMA 0.9999 for all; constant
#  lr 1e-4 / 4e-4; batch 20 (Cityscapes) / 32 (others); 200 epochs (ADE20K, Cityscapes) / 100 (COCO, LVIS).
#  official (reference notes §1.5, config.py set_dataset_default_lm): lambda_LM 10 except Cityscapes 5,
#  Cityscapes lr_g 4e-4 and EMA 0.999 (the released checkpoints may not have used these; unverified).
DATASET_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "thesis": {
        "ade20k": {"lambda_labelmix": 5.0, "ema_decay": 0.9999, "lr_g": 1e-4, "batch_size": 32, "num_epochs": 200},
        "cityscapes": {"lambda_labelmix": 5.0, "ema_decay": 0.9999, "lr_g": 1e-4, "batch_size": 20,
                       "num_epochs": 200},
        "coco": {"lambda_labelmix": 10.0, "ema_decay": 0.9999, "lr_g": 1e-4, "batch_size": 32, "num_epochs": 100},
        "lvis": {"lambda_labelmix": 10.0, "ema_decay": 0.9999, "lr_g": 1e-4, "batch_size": 32, "num_epochs": 100},
    },
    "official": {
        "ade20k": {"lambda_labelmix": 10.0, "ema_decay": 0.9999, "lr_g": 1e-4, "batch_size": 32, "num_epochs": 200},
        "cityscapes": {"lambda_labelmix": 5.0, "ema_decay": 0.999, "lr_g": 4e-4, "batch_size": 20,
                       "num_epochs": 200},
        "coco": {"lambda_labelmix": 10.0, "ema_decay": 0.9999, "lr_g": 1e-4, "batch_size": 32, "num_epochs": 100},
        # no official LVIS setting exists (reference notes §1.6); the thesis values are used
        "lvis": {"lambda_labelmix": 10.0, "ema_decay": 0.9999, "lr_g": 1e-4, "batch_size": 32, "num_epochs": 100},
    },
}

_CHOICES = {
    "dataset": tuple(DATASET_LAYOUT),
    "preset_source": ("thesis", "official"),
    "param_free_norm": ("batch", "instance"),
    "class_balancing": ("official", "eq4.3", "none"),
    "labelmix_draw": ("batch", "image"),
}


@dataclass
class OASISConfig:
    dataset: str = "ade20k"        # selects the label layout and the per-dataset hyper-parameters below
    preset_source: str = "thesis"  # "thesis" (l.1121) or "official" (reference notes §1.5) per-dataset values
    # --- label maps / resolution ------------------------------------------------------------
    semantic_nc: int | None = None  # None = DATASET_LAYOUT (ADE20K 151 = 150 classes + dontcare 0)
    contain_dontcare_label: bool = True  # label 0 = unknown/dontcare in ADE20K/Cityscapes/COCO (notes §1.6)
    crop_size: int | None = None   # generated width; None = DATASET_LAYOUT (thesis l.1112: 256x256, 256x512)
    aspect_ratio: float | None = None  # W / H; None = DATASET_LAYOUT (Cityscapes 2.0)
    # --- generator (reference notes §1.2) --------------------------------------------------------
    ch_G: int = 64                 # channels [16,16,16,8,4,2,1] x ch_G
    num_res_blocks: int = 6        # thesis l.1095: first SPADE block removed (7 -> 6 blocks, 96M -> 72M)
    z_dim: int = 64                # thesis l.1121: "The latent dimension M was set to 64"
    no_3dnoise: bool = False       # thesis l.1093: 3D noise on; True = the "no 3D noise" ablation
    spade_ks: int = 3              # reference notes §1.2 (--spade_ks 3)
    spade_hidden: int = 128        # reference notes §1.2: mlp_shared has 128 hidden channels
    param_free_norm: str = "batch"  # official SynchronizedBatchNorm2d(affine=False) = BatchNorm2d(affine=False)
    #                                 with the same state-dict keys; convert with nn.SyncBatchNorm for DDP
    # --- discriminator (reference notes §1.3) ----------------------------------------------------
    d_channels: tuple[int, ...] = (128, 128, 256, 256, 512, 512)  # encoder widths (hard-coded officially)
    d_last_channels: int = 64      # width of the last decoder block before the 1x1 N+1 conv
    # --- objective (thesis Eq. 4.2-4.5) -----------------------------------------------------------
    class_balancing: str = "eq4.3"  # thesis Eq. 4.2/4.3: w_c = BHW / count_c (inverse pixel frequency in the
    #                                 batch); "official": the released code's w_c = BHW / (n_present * count_c)
    #                                 (reference notes §1.4: same relative weights, real term / n_present
    #                                 against the fake term); "none". See losses/oasis.py.
    labelmix_draw: str = "batch"   # official: one bit per class for the whole batch (notes §1.4); "image":
    #                                one bit per class and image (thesis l.1077 does not specify)
    lambda_labelmix: float | None = None  # None = preset (thesis l.1121: 5 ADE20K/Cityscapes, 10 COCO/LVIS)
    # --- optimisation -------------------------------------------------------------------------
    lr_g: float | None = None      # None = preset (thesis l.1121: 1e-4)
    lr_d: float = 4e-4             # thesis l.1121
    betas: tuple[float, float] = (0.0, 0.999)  # thesis l.1121
    ema_decay: float | None = None  # None = preset (thesis l.1121: 0.9999)
    batch_size: int | None = None  # None = preset (thesis l.1121: 32; Cityscapes 20)
    num_epochs: int | None = None  # None = preset (thesis l.1121: 200 ADE20K/Cityscapes, 100 COCO/LVIS)

    def __post_init__(self) -> None:
        for key, allowed in _CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"OASISConfig.{key}: {getattr(self, key)!r} is not one of {list(allowed)}")
        for key, value in DATASET_LAYOUT[self.dataset].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        for key, value in DATASET_PRESETS[self.preset_source][self.dataset].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.semantic_nc is None or self.semantic_nc < 2:
            raise ConfigError(f"OASISConfig.semantic_nc must be given (>= 2) for dataset {self.dataset!r}")
        self.betas = tuple(float(b) for b in self.betas)
        self.d_channels = tuple(int(c) for c in self.d_channels)
        if self.num_res_blocks != 6:
            raise ConfigError("OASISConfig.num_res_blocks: only the released 6-block generator is implemented "
                              "(thesis l.1095; the 7-block ablation of Table 4.8 is not)")
        if len(self.d_channels) < 2:
            raise ConfigError("OASISConfig.d_channels needs at least 2 encoder widths")
        if self.init_size[0] < 1 or self.init_size[1] < 1:
            raise ConfigError(f"OASISConfig: crop_size {self.crop_size} too small for "
                              f"{self.num_res_blocks} generator blocks")
        if self.spade_ks % 2 != 1:
            raise ConfigError("OASISConfig.spade_ks must be odd")
        for key in ("lambda_labelmix", "lr_g", "lr_d", "ema_decay"):
            if getattr(self, key) < 0:
                raise ConfigError(f"OASISConfig.{key} must be >= 0")
        if self.batch_size < 1:
            raise ConfigError("OASISConfig.batch_size must be >= 1")

    @property
    def init_size(self) -> tuple[int, int]:
        """(h, w) of the first generator block: w = crop // 2^(blocks-1), h = round(w / aspect_ratio)
        (reference notes §1.2: 8x8 for ADE20K/COCO, 8x16 for Cityscapes)."""
        w = int(self.crop_size) // 2 ** (self.num_res_blocks - 1)
        return int(round(w / float(self.aspect_ratio))), w

    @property
    def output_size(self) -> tuple[int, int]:
        """(H, W) of the generated images."""
        h, w = self.init_size
        f = 2 ** (self.num_res_blocks - 1)
        return h * f, w * f

    @property
    def label_input_nc(self) -> int:
        """Channels of the conditioning tensor fed to ``fc`` and every SPADE: label (+ 3D noise)."""
        return self.semantic_nc + (0 if self.no_3dnoise else self.z_dim)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "") -> "OASISConfig":
        return from_dict(cls, data, where=where or "OASISConfig")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)
