"""OSVOS online fine-tuning on the first frame, prediction of a sequence, DAVIS-style output.

Protocol (reference notes downstream-protocols.md §1.2, official ``train_online.py``): only frame 0 is used;
one pass = forward + backward of one batch; gradients are accumulated over ``n_ave_grad`` passes (loss divided
by ``n_ave_grad``) before one SGD step; 10 000 passes = 2 000 steps; loss = class-balanced BCE on the fuse
output only; SGD with the official parameter groups (``score_dsn`` frozen).

Synthetic data (thesis l.1837): "At each fine-tuning epoch, we double the batch size and randomly add
generated image-mask pairs ... 50%-50% ratio". Here each pass's batch is frame 0 plus one synthetic pair drawn
uniformly (with replacement across passes) from the filtered pool, resized to the frame size (image bilinear,
mask nearest). With ``standard_aug`` every sample of the batch (real and synthetic) is augmented independently.

DAVIS-17 (OUR RULE, the thesis is silent): one binary model per object id of the first-frame mask, trained on
``mask == id`` (synthetic masks: the same id taken from the synthetic mask); the merged label map is the id
with the highest probability, background where all per-object probabilities are below ``threshold``.
DAVIS-16: objects merged into one foreground, one model, labels 0/1.

Bad input (README "Bad input"): an object id that appears only after frame 0 (2017 mode) is not segmented
(predicted as background, as STM does; the DAVIS-17 toolkit scores objects 1..max(first frame)): a warning is
logged and the ids are recorded in ``done.json`` (``untracked_objects``). A synthetic pool smaller than the
number of synthetic pairs per batch (``cfg.n_synthetic``) is still used: pairs are drawn with replacement, so
some repeat within a batch (warning). An empty pool is a DataError naming the manifest
(``data.read_synthetic_manifest``).

Predictions are written as indexed DAVIS-palette PNGs holding object ids (never soft maps).
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from gan_core.errors import ConfigError, DataError
from gan_core.provenance import provenance
from gan_core.train.loop import LoopConfig, run_training
from gan_core.utils.atomic import write_json
from gan_core.utils.dataclass_config import to_dict
from gan_core.utils.images import read_image, read_mask, write_mask

from . import data
from .augment import standard_augment
from .config import OSVOSConfig
from .loss import class_balanced_bce
from .net import OSVOSNet, load_parent

log = logging.getLogger(__name__)


def autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def check_finite(loss: torch.Tensor, iteration: int) -> None:
    """Fail loudly instead of writing predictions of a diverged network."""
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"non-finite OSVOS loss at iteration {iteration}: the learning rate is too high for this input "
            "scale (the loss is summed over pixels; official lr 1e-8 at 854x480 with Caffe-mean inputs)"
        )


def build_optimizer(net: OSVOSNet, cfg: OSVOSConfig) -> torch.optim.SGD:
    """SGD with the official OSVOS parameter groups (reference notes §1.2 table)."""
    lr, wd = cfg.lr, cfg.weight_decay

    def split(modules: nn.Module):
        named = list(modules.named_parameters())
        return [p for n, p in named if n.endswith("weight")], [p for n, p in named if n.endswith("bias")]

    st_w, st_b = split(net.stages)
    sp_w, sp_b = split(net.side_prep)
    groups = [
        {"params": st_w, "lr": lr * cfg.lr_mult_weight, "weight_decay": wd},
        {"params": st_b, "lr": lr * cfg.lr_mult_bias, "weight_decay": 0.0},
        {"params": sp_w, "lr": lr * cfg.lr_mult_weight, "weight_decay": wd},
        {"params": sp_b, "lr": lr * cfg.lr_mult_bias, "weight_decay": 0.0},
        {"params": list(net.upscale.parameters()), "lr": lr * cfg.lr_mult_upscale, "weight_decay": 0.0},
        {"params": list(net.upscale_.parameters()), "lr": lr * cfg.lr_mult_upscale, "weight_decay": 0.0},
        {"params": [net.fuse.weight], "lr": lr * cfg.lr_mult_fuse_weight, "weight_decay": wd},
        {"params": [net.fuse.bias], "lr": lr * cfg.lr_mult_fuse_bias, "weight_decay": 0.0},
    ]
    if cfg.train_score_dsn:  # not official: score_dsn is outside the official optimiser
        sd_w, sd_b = split(net.score_dsn)
        groups += [{"params": sd_w, "lr": lr * cfg.lr_mult_weight, "weight_decay": wd},
                   {"params": sd_b, "lr": lr * cfg.lr_mult_bias, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum)


class FinetuneTrainer:
    """One object's online fine-tuning as a :class:`gan_core.train.loop.Trainer` (one iteration = one pass).

    ``image``: uint8 (3,H,W) first frame at training size; ``mask``: (H,W) binary target;
    ``syn_images``/``syn_masks``: uint8 (N,3,H,W) / binary (N,H,W) synthetic pool at the same size, or None.
    """

    def __init__(self, net: OSVOSNet, cfg: OSVOSConfig, image: torch.Tensor, mask: torch.Tensor,
                 syn_images: torch.Tensor | None = None, syn_masks: torch.Tensor | None = None,
                 device: str | torch.device = "cpu", seed: int = 0):
        self.cfg = cfg
        self.device = torch.device(device)
        self.net = net.to(self.device).train()
        self.optimizer = build_optimizer(self.net, cfg)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.image = image[None].to(self.device)
        self.mask = mask[None, None].float().to(self.device)
        if cfg.synthetic:
            if syn_images is None or syn_masks is None or len(syn_images) == 0:
                raise ConfigError("OSVOSConfig.synthetic is true but no synthetic pairs were given")
            if tuple(syn_images.shape[-2:]) != tuple(image.shape[-2:]):
                raise ValueError("synthetic images must be resized to the frame size first")
            if len(syn_images) < cfg.n_synthetic:
                log.warning("synthetic pool has %d pair(s) < %d per batch (synthetic_ratio %.2f); pairs are drawn "
                            "with replacement and repeat within a batch", len(syn_images), cfg.n_synthetic,
                            cfg.synthetic_ratio)
            self.syn_images = syn_images.to(self.device)
            self.syn_masks = syn_masks[:, None].float().to(self.device)
        self.last_synthetic_index: torch.Tensor | None = None
        self.optimizer.zero_grad(set_to_none=True)

    def make_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame 0 (+ ``cfg.n_synthetic`` random synthetic pairs), normalised and optionally augmented."""
        images, masks = self.image, self.mask
        if self.cfg.synthetic:
            idx = torch.randint(len(self.syn_images), (self.cfg.n_synthetic,), generator=self.generator)
            self.last_synthetic_index = idx
            idx = idx.to(self.device)
            images = torch.cat([images, self.syn_images[idx]])
            masks = torch.cat([masks, self.syn_masks[idx]])
        x = data.normalise(images, self.cfg.input_normalisation)
        if self.cfg.standard_aug:
            x, masks = standard_augment(x, masks, self.generator, self.cfg.aug_rotation, self.cfg.aug_scale,
                                        self.cfg.aug_hflip_p)
        return x, masks

    def train_step(self, iteration: int) -> dict[str, float]:
        x, y = self.make_batch()
        with autocast(self.device, self.cfg.bf16):
            logits = self.net(x)[-1]
        loss = class_balanced_bce(logits.float(), y)
        check_finite(loss, iteration)
        (loss / self.cfg.n_ave_grad).backward()
        if (iteration + 1) % self.cfg.n_ave_grad == 0:
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return {"loss": float(loss.detach())}

    def state_dict(self) -> dict[str, Any]:
        grads = {n: p.grad.detach().cpu() for n, p in self.net.named_parameters() if p.grad is not None}
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "grads": grads}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        params = dict(self.net.named_parameters())
        for n, p in params.items():  # gradients accumulated in an unfinished n_ave_grad window
            p.grad = state["grads"][n].to(p.device) if n in state["grads"] else None


@torch.no_grad()
def predict_sequence(net: OSVOSNet, frames: Sequence[np.ndarray] | torch.Tensor, cfg: OSVOSConfig,
                     device: str | torch.device = "cpu") -> np.ndarray:
    """Foreground probabilities sigmoid(fuse) (T,H,W) float32 at the frames' native size.

    ``frames``: uint8 HxWx3 arrays or a uint8 tensor (T,3,H,W). With ``cfg.resolution`` the frames are
    resized for the network and the probabilities bilinearly resized back.
    """
    device = torch.device(device)
    net = net.to(device).eval()
    x_all = frames if isinstance(frames, torch.Tensor) else data.images_to_tensor(list(frames))
    native = tuple(x_all.shape[-2:])
    out = []
    for start in range(0, len(x_all), cfg.predict_batch):
        x = data.resize_images(x_all[start : start + cfg.predict_batch].to(device), cfg.resolution)
        with autocast(device, cfg.bf16):
            logits = net(data.normalise(x, cfg.input_normalisation))[-1].float()
        if tuple(logits.shape[-2:]) != native:
            logits = F.interpolate(logits, size=native, mode="bilinear", align_corners=False)
        out.append(torch.sigmoid(logits)[:, 0].cpu())
    return torch.cat(out).numpy().astype(np.float32)


def merge_objects(probs: np.ndarray, ids: Sequence[int], threshold: float = 0.5) -> np.ndarray:
    """Label map from per-object probabilities ``probs`` (K, ...): the id of the most probable object,
    0 where all K probabilities are below ``threshold`` (OUR RULE for DAVIS-17, see module docstring)."""
    probs = np.asarray(probs)
    if probs.shape[0] != len(ids):
        raise ValueError(f"{probs.shape[0]} probability maps for {len(ids)} object ids")
    ids_arr = np.asarray(ids, dtype=np.int64)
    labels = ids_arr[np.argmax(probs, axis=0)]
    labels[probs.max(axis=0) < threshold] = 0
    return labels


def _object_seed(seed: int, obj: int) -> int:
    """Each object of a run gets its own augmentation/synthetic-draw stream (OUR RULE)."""
    return int(seed) * 1000 + int(obj)


def finetune_sequence(davis_root: str | Path, sequence: str, mode: str, parent: str | Path,
                      synthetic_manifest: str | Path | None, out_dir: str | Path, cfg: OSVOSConfig, seed: int = 0,
                      device: str | torch.device = "cpu", progress: bool = True) -> dict[str, Any]:
    """Fine-tune (one model per object in 2017 mode), predict every frame, write ``out/predictions/*.png``
    and ``out/done.json``. Resumable: each object's training lives in ``out/objects/<id>/`` with the loop's
    checkpoint; a finished run (``done.json`` present) returns its metadata without recomputing."""
    mode = data.check_mode(mode)
    out_dir = Path(out_dir)
    done_path = out_dir / "done.json"
    if done_path.exists():
        import json

        return json.loads(done_path.read_text())
    if cfg.synthetic and synthetic_manifest is None:
        raise ConfigError("OSVOSConfig.synthetic is true but no synthetic manifest was given")
    device = torch.device(device)

    frame_paths = data.sequence_frames(davis_root, sequence)
    ann_path = Path(davis_root) / "Annotations" / "480p" / sequence / f"{frame_paths[0].stem}.png"
    first_image = read_image(frame_paths[0])
    first_label = read_mask(ann_path)
    if first_label.shape != first_image.shape[:2]:
        raise DataError(ann_path, f"annotation size {first_label.shape[::-1]} differs from frame {frame_paths[0]}")
    ids = data.object_ids(first_label, mode, ann_path)
    untracked = data.untracked_objects(davis_root, sequence, ids, mode)
    if untracked:
        log.warning("%s: objects %s appear after frame 0; OSVOS fine-tunes only on the objects of frame 0 %s, so "
                    "they are predicted as background", sequence, untracked, ids)
    size = cfg.resolution or tuple(first_image.shape[:2])

    image = data.resize_images(data.images_to_tensor([first_image]), size)[0]
    label = data.resize_labels(torch.from_numpy(first_label)[None], size)[0]
    syn_images = syn_labels = None
    n_pool = 0
    if cfg.synthetic:
        syn_images, syn_labels = data.load_synthetic_pool(data.read_synthetic_manifest(synthetic_manifest), size)
        n_pool = len(syn_images)

    nets = []
    for obj in ids:
        obj_sel = None if mode == "2016" else obj
        net = load_parent(parent, cfg.width)
        trainer = FinetuneTrainer(
            net, cfg, image, data.foreground(label, obj_sel),
            None if syn_images is None else syn_images,
            None if syn_labels is None else data.foreground(syn_labels, obj_sel),
            device=device, seed=_object_seed(seed, obj),
        )
        loop_cfg = LoopConfig(iterations=cfg.n_passes, checkpoint_every=cfg.checkpoint_every,
                              log_every=cfg.log_every, seed=_object_seed(seed, obj), progress=progress,
                              desc=f"osvos {sequence} obj{obj}")
        run_training(trainer, out_dir / "objects" / str(obj), loop_cfg, meta={"object": obj})
        nets.append(trainer.net.eval())
        del trainer

    pred_dir = out_dir / "predictions"
    for start in range(0, len(frame_paths), cfg.predict_batch):
        chunk = frame_paths[start : start + cfg.predict_batch]
        frames = [read_image(p) for p in chunk]
        for p, f in zip(chunk, frames):
            if f.shape != first_image.shape:
                raise DataError(p, f"frame size {f.shape[1::-1]} differs from the first frame {first_image.shape[1::-1]}")
        probs = np.stack([predict_sequence(net, frames, cfg, device) for net in nets])
        labels = merge_objects(probs, ids, cfg.threshold)
        for p, lab in zip(chunk, labels):
            write_mask(pred_dir / f"{p.stem}.png", lab, palette=True)

    meta = {"sequence": sequence, "mode": mode, "objects": ids, "untracked_objects": untracked, "seed": int(seed), "n_frames": len(frame_paths),
            "synthetic_pool": n_pool, "parent": str(parent), "config": to_dict(cfg),
            "provenance": provenance(to_dict(cfg), seed=int(seed))}
    write_json(done_path, meta)
    return meta
