"""Configuration of the DeepLab-V3 + ResNeSt-50 downstream system (thesis l.1147, l.1255).

The thesis gives no schedule, resolution or epoch count (reference notes, downstream-protocols §4.1).
It quotes the PyTorch-Encoding model zoo (thesis l.1244), so the defaults are PyTorch-Encoding's
segmentation recipe (reference notes §4.2, ``experiments/segmentation/train.py``); the resolution is the
OASIS resolution, an [INFERENCE] of the notes (unverified). Build with
:func:`gan_core.utils.dataclass_config.from_dict`. Choices the sources leave open are marked "OUR RULE".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from gan_core.errors import ConfigError

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)  # Encoding train.py Normalize (ImageNet statistics)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
HEADS = ("encoding", "smp")
LABEL_TRANSFORMS = ("none", "ade20k", "cityscapes")


@dataclass
class DeepLabConfig:
    # --- network (reference notes §4.2, §4.3) -----------------------------------------------------
    backbone: str = "resnest50d"
    """timm model name. "resnest50d" = Encoding's resnest50 (same state-dict layout, notes §4.2 [VERIFIED]);
    a small one ("resnet18d", "resnest14d") for tiny runs."""
    head: str = "encoding"
    """"encoding": our re-implementation of Encoding's DeepLabV3Head (ASPP -> project 1x1+BN+ReLU+Dropout2d(0.5)
    -> 3x3+BN+ReLU+Dropout(0.1) -> 1x1) plus the FCN aux head on c3 (faithful). "smp": smp's DeepLabV3
    decoder + 1x1 classifier (no Dropout(0.1), no aux head; notes §4.3)."""
    output_stride: int = 8                     # Encoding: dilated backbone, output stride 8
    atrous_rates: tuple[int, int, int] = (12, 24, 36)  # Encoding ASPP rates for output stride 8
    aspp_channels: Optional[int] = None
    """None = in_channels // 8 as in Encoding (2048 // 8 = 256 for ResNeSt-50)."""
    aspp_dropout: float = 0.5                  # Encoding ASPP project Dropout2d(0.5)
    head_dropout: float = 0.1                  # Encoding head block Dropout(0.1)
    aux: bool = True                           # Encoding "--aux": FCNHead(1024) on c3 ("encoding" head only)
    aux_weight: float = 0.2                    # Encoding --aux-weight default
    pretrained_backbone: bool = True
    """Initialise the encoder from Encoding's ImageNet resnest50 weights (manifest entry resnest50_encoding);
    Encoding trains from ImageNet weights. Only possible with backbone "resnest50d"."""

    # --- optimisation (Encoding experiments/segmentation/train.py, reference notes §4.2) ----------
    batch_size: int = 16
    """Real images per batch (Encoding default 16). With ``synthetic_counterparts`` the batch holds
    2 * batch_size images: each real image followed by its synthetic counterpart (thesis l.1147)."""
    base_lr: float = 0.004
    """Learning rate per 16 images: lr = base_lr / 16 * batch_size (Encoding). OUR RULE: ``batch_size`` counts
    the real images (label maps), so a run with synthetic counterparts keeps the baseline's lr."""
    lr: Optional[float] = None                 # explicit lr; overrides the base_lr rule when set
    head_lr_mult: float = 10.0                 # Encoding: head and aux lr x10
    momentum: float = 0.9
    weight_decay: float = 1e-4
    poly_power: float = 0.9                    # Encoding LR_Scheduler 'poly'
    epochs: int = 180
    """Encoding: 180 (ADE20K), 240 (Cityscapes). iterations = epochs * floor(N / batch_size)."""
    iterations: Optional[int] = None           # explicit iteration count (tiny runs); overrides epochs

    # --- data and augmentation (Encoding datasets/base.py::_sync_transform) ------------------------
    image_size: tuple[int, int] = (256, 256)
    """(H, W) every image (real and synthetic) and label map is first resized to; also the crop size.
    [INFERENCE, notes §4.1] OASIS resolution: ADE20K 256x256, Cityscapes 256x512 (unverified)."""
    scale_range: tuple[float, float] = (0.5, 2.0)  # Encoding random long side in [0.5, 2.0] x base_size
    hflip_p: float = 0.5
    ignore_index: int = 255
    """Label ignored by the loss and the metric. Padding of the label uses it (Encoding pads the mask with 0,
    which its ADE20K/Cityscapes target transforms turn into the ignored -1)."""
    label_transform: str = "none"
    """How raw label PNGs become training ids: "none" (already 0..K-1 / ignore), "ade20k" (id - 1, 0 ->
    ignore; Encoding), "cityscapes" (labelIds -> 19 trainIds, others -> ignore; Encoding _class_to_index)."""
    synthetic_counterparts: bool = False
    """Add, for each training image, the synthetic image generated from the same label map (thesis l.1147)."""

    # --- runtime -------------------------------------------------------------------------------------
    bf16: bool = False                         # optional bf16 autocast on CUDA (loss in fp32)
    eval_batch: int = 8
    checkpoint_every: int = 1000
    log_every: int = 50

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ConfigError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.label_transform not in LABEL_TRANSFORMS:
            raise ConfigError(f"label_transform must be one of {LABEL_TRANSFORMS}, got {self.label_transform!r}")
        if self.output_stride not in (8, 16):
            raise ConfigError(f"output_stride must be 8 or 16, got {self.output_stride}")
        if self.batch_size < 1 or self.epochs < 1 or (self.iterations is not None and self.iterations < 1):
            raise ConfigError("batch_size, epochs and iterations must be >= 1")
        if len(self.image_size) != 2 or min(self.image_size) < 8:
            raise ConfigError(f"image_size must be (H, W) >= 8, got {self.image_size}")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ConfigError(f"scale_range must satisfy 0 < lo <= hi, got {self.scale_range}")
        if self.pretrained_backbone and self.backbone != "resnest50d":
            raise ConfigError(f"pretrained_backbone needs backbone 'resnest50d' (Encoding's ImageNet resnest50), "
                              f"got {self.backbone!r}; set pretrained_backbone false")

    @property
    def learning_rate(self) -> float:
        """The base lr of the backbone group (head groups get x head_lr_mult)."""
        return float(self.lr) if self.lr is not None else self.base_lr / 16.0 * self.batch_size

    @property
    def has_aux(self) -> bool:
        return self.head == "encoding" and self.aux

    def total_iterations(self, n_images: int) -> int:
        if self.iterations is not None:
            return int(self.iterations)
        return self.epochs * max(1, n_images // self.batch_size)
