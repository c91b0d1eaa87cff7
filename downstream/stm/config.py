"""Configuration of the STM downstream system (thesis Sec. 6.3.4, l.1839; reference notes downstream-protocols
§2).

Defaults reproduce the official test protocol (``eval_DAVIS.py``, reference notes §2.2) with the official
network (ResNet-50 encoders, keys 128, values 512, decoder 256; §2.1) plus the thesis's memory injection
(thesis l.1839: "we added synthesized image-mask pairs to the STM memory bank at step 0, before processing the
first video frame ... limit the number of added samples to 10, which were sampled randomly from the synthetic
pool"). Build it from a plain dict with :func:`gan_core.utils.dataclass_config.from_dict`.

The ``train_*`` fields only serve the tiny preset (a small STM trained from scratch on CPU, since the official
weights are too large for CPU tests and the official training code is not released, reference notes §2.1);
their values are our choices, not thesis numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from gan_core.errors import ConfigError

BACKBONES = ("resnet50", "resnet18")
MAX_OBJECTS = 10
"""K = 11 channels: background + 10 objects (official ``DAVIS_MO_Test.K``, reference notes §2.1)."""


@dataclass
class STMConfig:
    # --- network (used to build a new STM; ``load_stm_weights`` reads the sizes from the file) ----
    backbone: str = "resnet50"
    """"resnet50" = official encoders (torchvision ResNet-50 conv1/bn1/layer1-3); "resnet18" = the tiny
    preset's narrow encoders (layer1-3 with 64/128/256 channels instead of 256/512/1024)."""
    width: float = 1.0
    """Multiplier of the key (128), value (512) and decoder (256) channels; 1.0 = official (§2.1)."""

    # --- test-time protocol (reference notes §2.2; thesis l.1839) ------------------------------------
    mem_every: int = 5
    """Every mem_every-th frame (0, 5, 10, ...) stays in memory; the previous frame is always read
    (official ``Run_video(..., Mem_every=5)``; thesis l.1839 "each K-th pair")."""
    max_synthetic: int = 10
    """Synthetic pairs written into memory before frame 0, drawn at random without replacement from the
    pool (thesis l.1839: "limit the number of added samples to 10")."""
    synthetic: bool = False
    standard_aug: bool = False
    """Our reading of Table 6.5's STM rows with "standard" augmentation (the thesis, l.1843, says only OSVOS
    augments at test time): the extra memory pairs are passed through OSVOS' standard augmentation (flip,
    zoom, rotation). Without synthetic data the extra pairs are augmented copies of frame 0; with synthetic
    data each drawn synthetic pair is augmented. At most ``max_synthetic`` extra pairs either way."""
    """Inject synthetic pairs (set by the CLI from --synthetic-manifest)."""
    resolution: Optional[tuple[int, int]] = None
    """None = native frame size (480p for DAVIS, official: no resizing, §2.2); (H, W) = resize frames and
    synthetic pairs for the network (tiny runs); probabilities are resized back before the argmax."""
    bf16: bool = False
    """bf16 autocast for encoders/decoder (the memory read stays fp32). Off = official fp32."""

    # --- tiny training (tiny preset only; our choices, see module docstring) -------------------------
    train_iterations: int = 150
    """Adam steps (our choice: ~1 min on one CPU thread at 96x160, batch 4; J&F ~0.69 on the embedded
    DAVIS val split in a local check -- a tiny-preset number, not a thesis one)."""
    train_lr: float = 3e-4
    """Adam learning rate (our choice for training from scratch; not a thesis or official number)."""
    train_batch: int = 4
    """(memory frame, query frame) pairs per step."""
    train_max_skip: int = 5
    """Query frame = memory frame + k, k uniform in 1..train_max_skip (our choice)."""
    train_max_objects: int = 3
    """At most this many objects (drawn at random) of the memory frame are trained per pair (speed)."""
    checkpoint_every: int = 100
    log_every: int = 20

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ConfigError(f"STMConfig.backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.width <= 0:
            raise ConfigError(f"STMConfig.width must be > 0, got {self.width}")
        if self.mem_every < 1:
            raise ConfigError(f"STMConfig.mem_every must be >= 1, got {self.mem_every}")
        if self.max_synthetic < 0:
            raise ConfigError(f"STMConfig.max_synthetic must be >= 0, got {self.max_synthetic}")
        if self.resolution is not None:
            res = tuple(int(v) for v in self.resolution)
            if len(res) != 2 or min(res) < 16:
                raise ConfigError(f"STMConfig.resolution must be null or [H, W] with H, W >= 16, got {self.resolution}")
            self.resolution = res
        for name in ("train_iterations", "train_batch", "train_max_skip", "train_max_objects",
                     "checkpoint_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"STMConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.train_max_objects > MAX_OBJECTS:
            raise ConfigError(f"STMConfig.train_max_objects must be <= {MAX_OBJECTS}")

    def channels(self) -> tuple[int, int, int]:
        """(key, value, decoder) channels: official (128, 512, 256) times ``width``."""
        return tuple(max(1, int(round(c * self.width))) for c in (128, 512, 256))
