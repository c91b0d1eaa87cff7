"""A narrow PSPNet trained briefly on the BASE classes of one COCO-20i fold (tiny preset only).

The paper preset uses the official per-fold checkpoints (manual download, manifest entry
``repri_coco_checkpoints``); the official training (100 epochs of PSPNet on COCO, label smoothing, ...) is NOT
reproduced here. This module only gives the tiny preset a feature extractor that has seen the base classes, so
that the RePRI inference runs on features that mean something, in the official checkpoint format
(``{"epoch", "state_dict": {"module." + key: tensor}}``, loaded strictly by :func:`pspnet.load_pspnet`).

Training (all our choice, tiny scale): random images of the train list, Resize(image_size) + pad as at test
time (:func:`evaluate.preprocess`), random horizontal flip; label = 1 + rank of the pixel's class among the 60
base classes of the fold, test-class pixels -> 0 (background, so the novel classes are never supervised as
objects), padding 255 (ignored); cross-entropy on the 61-way classifier; SGD with momentum. Resumable through
:func:`gan_core.train.loop.run_training` (model, optimiser and RNG states in ``checkpoint.pt``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gan_core.errors import ConfigError
from gan_core.train.loop import LoopConfig, run_training
from gan_core.utils.atomic import torch_save
from gan_core.utils.images import read_image

from .config import RePRIConfig
from .episodes import IGNORE, Item, fold_classes, read_label, read_list
from .evaluate import preprocess
from .pspnet import PSPNet, PSPNetArch

CHECKPOINT_FILE = "best.pth"


@dataclass
class RePRITrainConfig:
    """Tiny base-class training (our choice; not a thesis configuration)."""

    iterations: int = 200
    batch_size: int = 4
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    image_size: int = 121
    """Resize/pad size during training (test uses RePRIConfig.image_size; keep them equal)."""
    checkpoint_every: int = 50
    log_every: int = 10

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size", "checkpoint_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"RePRITrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size < 9:
            raise ConfigError(f"RePRITrainConfig.image_size must be >= 9, got {self.image_size}")


def base_class_lut(fold: int, num_classes: int = 61) -> np.ndarray:
    """uint8 lookup 0..255 -> training label: base class -> 1 + rank, test classes and 0 -> 0, 255 -> 255."""
    test = set(fold_classes(fold))
    base = [c for c in range(1, 81) if c not in test]
    if len(base) + 1 > num_classes:
        raise ConfigError(f"{len(base)} base classes do not fit a {num_classes}-way classifier")
    lut = np.zeros(256, np.int64)
    for i, c in enumerate(base):
        lut[c] = i + 1
    lut[IGNORE] = IGNORE
    return lut


class TinyPSPNetTrainer:
    def __init__(self, items: list[Item], fold: int, cfg: RePRITrainConfig, device: torch.device):
        self.items, self.cfg, self.device = items, cfg, device
        self.lut = base_class_lut(fold)
        self.prep = RePRIConfig(image_size=cfg.image_size)
        self.model = PSPNet(PSPNetArch.tiny()).to(device).train()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(self.items), (self.cfg.batch_size,)).tolist()
        flips = (torch.rand(self.cfg.batch_size) < 0.5).tolist()
        xs, ys = [], []
        for i, flip in zip(idx, flips):
            it = self.items[i]
            img, lab = preprocess(read_image(it.image), self.lut[read_label(it.label)], self.prep)
            if flip:
                img, lab = img.flip(-1), lab.flip(-1)
            xs.append(img), ys.append(lab)
        return torch.stack(xs).to(self.device), torch.stack(ys).to(self.device)

    def train_step(self, iteration: int) -> dict[str, float]:
        x, y = self._batch()
        loss = F.cross_entropy(self.model(x), y, ignore_index=IGNORE)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"ce": float(loss.detach())}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])


def train_tiny(list_path: str | Path, root: str | Path, fold: int, out_dir: str | Path, cfg: RePRITrainConfig,
               seed: int = 0, device: torch.device | str = "cpu") -> Path:
    """Train (or resume) and write ``out_dir/best.pth`` in the official layout; returns its path."""
    out_dir = Path(out_dir)
    torch.manual_seed(seed)  # the initial weights depend on the seed only (run_training seeds after building)
    trainer = TinyPSPNetTrainer(read_list(list_path, root), fold, cfg, torch.device(device))
    loop = LoopConfig(iterations=cfg.iterations, checkpoint_every=cfg.checkpoint_every, log_every=cfg.log_every,
                      seed=seed, progress=False, desc=f"repri tiny fold {fold}")
    run_training(trainer, out_dir, loop, meta={"fold": fold, "list": str(list_path), "seed": seed})
    # after run_training the trainer holds the final weights (trained now, or restored from checkpoint.pt)
    state = {"module." + k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
    torch_save({"epoch": cfg.iterations, "state_dict": state}, out_dir / CHECKPOINT_FILE)
    return out_dir / CHECKPOINT_FILE
