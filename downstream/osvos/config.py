"""Configuration of the OSVOS downstream system (thesis Sec. 6.3.4, l.1837; reference notes
downstream-protocols.md §1).

Defaults reproduce the official online fine-tuning protocol (OSVOS-PyTorch ``train_online.py``, reference
notes §1.2) plus the thesis's synthetic-data injection (thesis l.1837: "At each fine-tuning epoch, we double
the batch size and randomly add generated image-mask pairs ... 50%-50% ratio between real and synthetic
data"). Build it from a plain dict with :func:`gan_core.utils.dataclass_config.from_dict`.

Design decisions that the thesis leaves open are marked "OUR RULE" below.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from gan_core.errors import ConfigError

CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)  # reference notes §1.1 (dataloaders/davis_2016.py)
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


@dataclass
class OSVOSConfig:
    # --- network -------------------------------------------------------------------------------
    width: float = 1.0
    """Channel multiplier of the VGG16 trunk; 1.0 = the official network (needed to load the parent)."""

    # --- online fine-tuning schedule (reference notes §1.2) -------------------------------------
    n_passes: int = 10000
    """Forward/backward passes on frame 0 (official nEpochs = 2000 * nAveGrad = 10000)."""
    n_ave_grad: int = 5
    """Gradient accumulation: one optimiser step per n_ave_grad passes (official nAveGrad = 5)."""
    lr: float = 1e-8
    momentum: float = 0.9
    weight_decay: float = 2e-4
    # Per-group multipliers of ``lr`` (official optimiser groups, reference notes §1.2 table).
    lr_mult_weight: float = 1.0        # stages / side_prep weights (with weight decay)
    lr_mult_bias: float = 2.0          # stages / side_prep biases (no weight decay)
    lr_mult_upscale: float = 0.0       # upscale / upscale_ deconvolutions (frozen in effect)
    lr_mult_fuse_weight: float = 0.01  # fuse weight: lr/100 (with weight decay)
    lr_mult_fuse_bias: float = 0.02    # fuse bias: 2*lr/100
    train_score_dsn: bool = False      # official: score_dsn is not in the optimiser (frozen)

    # --- augmentation (thesis l.1845 "standard"; reference notes §1.2) ---------------------------
    standard_aug: bool = False
    """Random hflip + scale + rotation of every training sample ("standard" augmentation)."""
    synthetic: bool = False
    """Add synthetic (OSMIS) image-mask pairs to every batch (thesis l.1837)."""
    synthetic_ratio: float = 0.5
    """Fraction of synthetic samples in a batch; 0.5 = batch doubled, 50/50 (thesis l.1837)."""
    aug_rotation: tuple[float, float] = (-30.0, 30.0)  # degrees, official ScaleNRotate rots
    aug_scale: tuple[float, float] = (0.75, 1.25)      # official ScaleNRotate scales
    aug_hflip_p: float = 0.5                           # official RandomHorizontalFlip

    # --- prediction ------------------------------------------------------------------------------
    threshold: float = 0.5
    """Foreground iff sigmoid(fuse logit) >= threshold. Official code saves soft maps; the reference
    notes (§1.2 "Plan: binarise at p > 0.5 explicitly") fix this value."""
    multi_object: str = "per_object"
    """OUR RULE (the thesis is silent, reference notes §1.2 [INFERENCE]): DAVIS-17 is handled by fine-tuning
    one binary model per object id of the first-frame mask; the label of a pixel is the argmax over the
    per-object probabilities, and background where every probability is below ``threshold``."""
    input_normalisation: str = "caffe"
    """"caffe": BGR, minus the Caffe mean (104.00699, 116.66877, 122.67892), no /255 -- what the official
    parent expects (reference notes §1.1). "imagenet": RGB/255, ImageNet mean/std."""
    resolution: Optional[tuple[int, int]] = None
    """None = the native frame size (480p for DAVIS, as the official test); (H, W) = resize frames (and
    synthetic pairs) to this size for fine-tuning and prediction (tiny runs); predictions are resized back."""
    predict_batch: int = 4
    """Frames per forward pass at prediction time (memory/speed only)."""
    bf16: bool = False
    """Optional bf16 autocast for the network forward (loss in fp32). Off = official fp32."""

    # --- loop bookkeeping --------------------------------------------------------------------------
    checkpoint_every: int = 500
    log_every: int = 100

    # --- parent network training (tiny preset only; the paper preset loads the official parent) ----
    parent_iterations: int = 300
    """Optimiser steps of the tiny parent (our choice for a CPU-sized preset, not a thesis number)."""
    parent_lr: float = 1e-4
    """Adam learning rate of the tiny parent (our choice: the official parent starts from ImageNet VGG
    weights with SGD lr 1e-8, which does not train a randomly initialised net in a few hundred steps)."""
    parent_batch: int = 4
    parent_aug: bool = True
    """Flip + scale + rotation during parent training (the official parent training uses the same transforms)."""

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise ConfigError(f"OSVOSConfig.width must be > 0, got {self.width}")
        if self.n_passes < 1 or self.n_ave_grad < 1:
            raise ConfigError("OSVOSConfig.n_passes and n_ave_grad must be >= 1")
        if not 0.0 <= self.synthetic_ratio < 1.0:
            raise ConfigError(f"OSVOSConfig.synthetic_ratio must lie in [0, 1), got {self.synthetic_ratio}")
        if self.synthetic and self.synthetic_ratio <= 0.0:
            raise ConfigError("OSVOSConfig.synthetic is true but synthetic_ratio is 0")
        if self.multi_object != "per_object":
            raise ConfigError(f"OSVOSConfig.multi_object must be 'per_object', got {self.multi_object!r}")
        if self.input_normalisation not in ("caffe", "imagenet"):
            raise ConfigError(
                f"OSVOSConfig.input_normalisation must be 'caffe' or 'imagenet', got {self.input_normalisation!r}"
            )
        if self.resolution is not None:
            res = tuple(int(v) for v in self.resolution)
            if len(res) != 2 or min(res) < 16:
                raise ConfigError(f"OSVOSConfig.resolution must be null or [H, W] with H, W >= 16, got {self.resolution}")
            self.resolution = res
        self.aug_rotation = tuple(float(v) for v in self.aug_rotation)
        self.aug_scale = tuple(float(v) for v in self.aug_scale)
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"OSVOSConfig.threshold must lie in (0, 1), got {self.threshold}")

    @property
    def n_synthetic(self) -> int:
        """Synthetic samples added to the one real sample of a batch (1 for the thesis 50/50 ratio)."""
        if not self.synthetic:
            return 0
        return max(1, round(self.synthetic_ratio / (1.0 - self.synthetic_ratio)))  # ratio > 0 checked
