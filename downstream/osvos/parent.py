"""Training of an OSVOS parent network on a DAVIS-format train split (tiny preset only).

The paper preset loads the official parent (``net.load_parent``, strict keys). For CPU-sized runs without
the official file we train a small parent from scratch on all frames of the train sequences, objects merged
into one binary foreground.

Choices (not thesis numbers; the thesis uses the official parent): Adam with ``cfg.parent_lr``; batches of
``cfg.parent_batch`` frames drawn uniformly with a seeded generator; flip/scale/rotation augmentation as in
fine-tuning; deep supervision as in the official parent training (class-balanced BCE on every side output
and the fuse output, side losses weighted by ``1 - iteration/iterations`` -- recalled from the official
``train_parent.py``, [INFERENCE], not in the reference notes). Frames are resized to ``cfg.resolution``, or
to the first frame's size when it is null.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_core.errors import DataError
from gan_core.train.loop import LoopConfig, run_training
from gan_core.utils.atomic import torch_save
from gan_core.utils.images import read_image, read_mask

from . import data
from .augment import standard_augment
from .config import OSVOSConfig
from .finetune import autocast, check_finite
from .loss import class_balanced_bce
from .net import OSVOSNet

PARENT_FILE = "parent.pth"


def train_samples(davis_root: str | Path, sequences: list[str]) -> list[tuple[Path, Path]]:
    """(frame, annotation) pairs of every annotated frame of ``sequences``."""
    pairs = []
    for seq in sequences:
        ann_dir = Path(davis_root) / "Annotations" / "480p" / seq
        for frame in data.sequence_frames(davis_root, seq):
            ann = ann_dir / f"{frame.stem}.png"
            if ann.is_file():
                pairs.append((frame, ann))
    if not pairs:
        raise DataError(Path(davis_root) / "Annotations" / "480p", f"no annotated frames for {sequences}")
    return pairs


class ParentTrainer:
    """Parent training as a :class:`gan_core.train.loop.Trainer` (one iteration = one Adam step)."""

    def __init__(self, net: OSVOSNet, cfg: OSVOSConfig, samples: list[tuple[Path, Path]],
                 device: str | torch.device = "cpu", seed: int = 0):
        self.cfg = cfg
        self.samples = samples
        self.device = torch.device(device)
        self.net = net.to(self.device).train()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.parent_lr)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.size = cfg.resolution or tuple(read_image(samples[0][0]).shape[:2])

    def make_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(self.samples), (self.cfg.parent_batch,), generator=self.generator).tolist()
        images, masks = [], []
        for i in idx:
            img_path, ann_path = self.samples[i]
            img, lab = read_image(img_path), read_mask(ann_path)
            if img.shape[:2] != lab.shape:
                raise DataError(ann_path, f"annotation size differs from frame {img_path}")
            images.append(data.resize_images(data.images_to_tensor([img]), self.size))
            masks.append(data.resize_labels(torch.from_numpy(data.foreground(lab, None).astype(np.int64))[None],
                                            self.size))
        x = data.normalise(torch.cat(images).to(self.device), self.cfg.input_normalisation)
        y = torch.cat(masks)[:, None].float().to(self.device)
        if self.cfg.parent_aug:
            x, y = standard_augment(x, y, self.generator, self.cfg.aug_rotation, self.cfg.aug_scale,
                                    self.cfg.aug_hflip_p)
        return x, y

    def train_step(self, iteration: int) -> dict[str, float]:
        x, y = self.make_batch()
        with autocast(self.device, self.cfg.bf16):
            outputs = self.net(x)
        losses = [class_balanced_bce(o.float(), y) for o in outputs]
        side_weight = 1.0 - iteration / self.cfg.parent_iterations
        loss = side_weight * sum(losses[:-1]) + losses[-1]
        check_finite(loss, iteration)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach()), "loss_fuse": float(losses[-1].detach())}

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])


def train_parent(davis_root: str | Path, sequences: list[str], out_dir: str | Path, cfg: OSVOSConfig,
                 seed: int = 0, device: str | torch.device = "cpu", progress: bool = True) -> Path:
    """Train (or resume) a parent; writes ``out/parent.pth`` (plain state dict, loadable by ``load_parent``)."""
    out_dir = Path(out_dir)
    torch.manual_seed(seed)  # the random init of the parent depends on the seed only
    net = OSVOSNet(cfg.width)
    trainer = ParentTrainer(net, cfg, train_samples(davis_root, sequences), device, seed)
    loop_cfg = LoopConfig(iterations=cfg.parent_iterations, checkpoint_every=cfg.checkpoint_every,
                          log_every=cfg.log_every, seed=seed, progress=progress, desc="osvos parent")
    parent_path = out_dir / PARENT_FILE
    run_training(trainer, out_dir, loop_cfg, meta={"sequences": sequences, "width": cfg.width})
    torch_save({k: v.detach().cpu() for k, v in trainer.net.state_dict().items()}, parent_path)
    return parent_path
