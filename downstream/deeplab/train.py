"""Training of DeepLab-V3 with synthetic counterparts in the batch (thesis l.1147, l.1255).

Each batch holds ``batch_size`` real images drawn without replacement (a fresh permutation per epoch,
Encoding's shuffled loader with drop_last) and, with ``synthetic_counterparts``, right after each real
image the synthetic image generated from the same label map, under the same augmentation, with the label
map duplicated: ``[real_0, syn_0, real_1, syn_1, ...]``. Recipe: SGD (momentum 0.9, wd 1e-4), lr
``base_lr/16*batch_size`` with head and aux x10, poly decay (power 0.9), CE with ignore index + 0.2 x aux
CE (Encoding, reference notes downstream-protocols §4.2).

Determinism: the sample order and the augmentation of iteration ``it`` are functions of (seed, it) only;
dropout uses the global RNG, which :mod:`gan_core.train.loop` checkpoints, so a resumed run equals an
uninterrupted one.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gan_core.errors import ConfigError
from gan_core.provenance import provenance
from gan_core.train.loop import LoopConfig, run_training
from gan_core.utils.atomic import torch_save
from gan_core.utils.dataclass_config import to_dict

from .config import DeepLabConfig
from .data import SegmentationSet, apply_aug, draw_aug, normalise
from .model import build_deeplab, load_encoder_imagenet

MODEL_NAME = "model.pt"


def poly_lr(base_lr: float, iteration: int, total: int, power: float = 0.9) -> float:
    """Encoding's poly schedule: ``base_lr * (1 - iteration / total) ** power`` (iteration from 0)."""
    return base_lr * (1.0 - iteration / total) ** power


def _generator(*key: int) -> torch.Generator:
    seed = int(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in key]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(seed & (2**63 - 1))


class DeepLabTrainer:
    """:class:`gan_core.train.loop.Trainer` for DeepLab-V3 (real + synthetic counterparts)."""

    def __init__(self, cfg: DeepLabConfig, data: SegmentationSet, num_classes: int,
                 device: torch.device | str = "cpu", seed: int = 0, encoder_weights: str | Path | None = None):
        if cfg.synthetic_counterparts and data.synthetic is None:
            raise ConfigError("synthetic_counterparts is true but no synthetic images were given (--synthetic DIR)")
        if len(data) < cfg.batch_size:
            raise ConfigError(f"{len(data)} training images are fewer than batch_size {cfg.batch_size}")
        self.cfg, self.data, self.num_classes = cfg, data, int(num_classes)
        self.device, self.seed = torch.device(device), int(seed)
        with torch.random.fork_rng(devices=[]):  # initial weights depend on the seed only
            torch.manual_seed(self.seed)
            self.model = build_deeplab(cfg, num_classes)
        if encoder_weights is not None:
            load_encoder_imagenet(self.model, encoder_weights)
        self.model.to(self.device)
        head_ids = {id(p) for p in self.model.head_parameters()}
        backbone = [p for p in self.model.parameters() if id(p) not in head_ids]
        lr = cfg.learning_rate
        self.optimizer = torch.optim.SGD(
            [{"params": backbone, "lr": lr, "lr_mult": 1.0},
             {"params": self.model.head_parameters(), "lr": lr * cfg.head_lr_mult, "lr_mult": cfg.head_lr_mult}],
            lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        self.iters_per_epoch = max(1, len(data) // cfg.batch_size)
        self.total_iterations = cfg.total_iterations(len(data))

    # ------------------------------------------------------------------ batches
    def indices(self, iteration: int) -> list[int]:
        """Real-image indices of an iteration: slice of the epoch's permutation (drop_last)."""
        epoch, k = divmod(iteration, self.iters_per_epoch)
        perm = torch.randperm(len(self.data), generator=_generator(self.seed, epoch, 0))
        b = self.cfg.batch_size
        return perm[k * b:(k + 1) * b].tolist()

    def batch(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images (N,3,H,W) normalised, labels (N,H,W), is_synthetic (N,)) on CPU; N = B or 2B."""
        cfg = self.cfg
        gen = _generator(self.seed, iteration, 1)
        crop = tuple(cfg.image_size)
        imgs, labs, syn_flags = [], [], []
        for i in self.indices(iteration):
            img, lab, syn = self.data.load(i)
            p = draw_aug(gen, cfg)
            img, lab = apply_aug(img, lab, p, crop, cfg.ignore_index)
            imgs.append(img), labs.append(lab), syn_flags.append(False)
            if cfg.synthetic_counterparts:
                syn, _ = apply_aug(syn, None, p, crop, cfg.ignore_index)  # same geometry as its real image
                imgs.append(syn), labs.append(lab), syn_flags.append(True)
        return normalise(torch.stack(imgs)), torch.stack(labs), torch.tensor(syn_flags)

    # ------------------------------------------------------------------ training
    def set_lr(self, iteration: int) -> float:
        lr = poly_lr(self.cfg.learning_rate, iteration, self.total_iterations, self.cfg.poly_power)
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g["lr_mult"]
        return lr

    def loss(self, out: torch.Tensor, aux: torch.Tensor | None, labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
        ign = self.cfg.ignore_index
        if not bool((labels != ign).any()):  # CE over zero pixels is NaN
            zero = out.sum() * 0.0
            return zero, {"loss": 0.0}
        main = F.cross_entropy(out.float(), labels, ignore_index=ign)
        total, logs = main, {"ce": main.item()}
        if aux is not None:
            a = F.cross_entropy(aux.float(), labels, ignore_index=ign)
            total = total + self.cfg.aux_weight * a
            logs["aux_ce"] = a.item()
        logs["loss"] = total.item()
        return total, logs

    def _autocast(self):
        if self.cfg.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, iteration: int) -> dict[str, float]:
        self.model.train()
        lr = self.set_lr(iteration)
        images, labels, _ = self.batch(iteration)
        images, labels = images.to(self.device), labels.to(self.device)
        with self._autocast():
            out, aux = self.model.forward_train(images)
        loss, logs = self.loss(out, aux, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {**logs, "lr": lr}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


def train_deeplab(images_dir: str | Path, labels_dir: str | Path, synthetic_dir: str | Path | None, num_classes: int,
                  out_dir: str | Path, cfg: DeepLabConfig, seed: int = 0, device: torch.device | str = "cpu",
                  encoder_weights: str | Path | None = None, progress: bool = True) -> Path:
    """Train (resumably) into ``out_dir``; writes ``checkpoint.pt`` (loop), ``model.pt`` and ``done.json``."""
    data = SegmentationSet.from_folders(images_dir, labels_dir, cfg,
                                       synthetic_dir if cfg.synthetic_counterparts else None)
    trainer = DeepLabTrainer(cfg, data, num_classes, device, seed, encoder_weights)
    params = to_dict(cfg)
    meta = {"num_classes": int(num_classes), "n_train": len(data), "seed": seed, "config": params,
            "encoder_weights": str(encoder_weights) if encoder_weights else None,
            "provenance": provenance(params, seed=seed)}
    loop = LoopConfig(iterations=trainer.total_iterations, checkpoint_every=cfg.checkpoint_every,
                      log_every=cfg.log_every, seed=seed, progress=progress, desc="deeplab")
    out_dir = Path(out_dir)
    run_training(trainer, out_dir, loop, meta)
    path = out_dir / MODEL_NAME
    torch_save({"model": {k: v.cpu() for k, v in trainer.model.state_dict().items()}, "config": params,
                "num_classes": int(num_classes)}, path)
    return path
