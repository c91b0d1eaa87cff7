"""Training of a tiny STM from scratch on (memory frame, query frame) pairs of a DAVIS-format train split.

Only for the tiny preset: the paper preset loads the official weights (``model.load_stm_weights``); the official
training code is not released (reference notes §2.1). All choices here are ours, not thesis numbers:

* a sample = frame t of a training sequence with its annotation written to memory, and frame t + k
  (k uniform in 1..``train_max_skip``) as the query; up to ``train_max_objects`` objects of frame t (drawn at
  random) are tracked; ids not tracked and background form channel 0, void (255) pixels are ignored;
* loss = cross-entropy of the Soft_aggregation logits of the query against its channel map (the official
  STM's training loss, as described in the paper); Adam with ``train_lr``; ``train_batch`` samples per step;
* frames are resized to ``resolution`` (or frame 0's size) and zero-padded to a multiple of 16.

Resumable through :func:`gan_core.train.loop.run_training` (checkpoint with model, optimiser, sampler state).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gan_core.errors import DataError
from gan_core.train.loop import LoopConfig, run_training
from gan_core.utils.atomic import torch_save
from gan_core.utils.images import read_image, read_mask

from ..osvos import data
from .config import STMConfig
from .inference import crop_padding, one_hot_objects, pad_amounts, pad_to_multiple
from .model import STM, soft_aggregate

WEIGHTS_FILE = "stm_tiny.pth"
IGNORE = -100


def build_model(cfg: STMConfig) -> STM:
    key, value, dec = cfg.channels()
    return STM(cfg.backbone, key, value, dec)


def train_videos(davis_root: str | Path, sequences: list[str]) -> list[list[tuple[Path, Path]]]:
    """Per sequence, its annotated (frame, annotation) pairs in order; sequences with < 2 are skipped."""
    videos = []
    for seq in sequences:
        ann_dir = Path(davis_root) / "Annotations" / "480p" / seq
        pairs = [(f, ann_dir / f"{f.stem}.png") for f in data.sequence_frames(davis_root, seq)]
        pairs = [p for p in pairs if p[1].is_file()]
        if len(pairs) >= 2:
            videos.append(pairs)
    if not videos:
        raise DataError(Path(davis_root) / "Annotations" / "480p", f"no sequence of {sequences} has 2 annotated frames")
    return videos


class PairTrainer:
    """Tiny STM training as a :class:`gan_core.train.loop.Trainer` (one iteration = one Adam step)."""

    def __init__(self, model: STM, cfg: STMConfig, videos: list[list[tuple[Path, Path]]],
                 device: str | torch.device = "cpu", seed: int = 0):
        self.cfg = cfg
        self.videos = videos
        self.device = torch.device(device)
        self.model = model.to(self.device).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.train_lr)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.size = cfg.resolution or tuple(read_image(videos[0][0][0]).shape[:2])
        self.pad = pad_amounts(*self.size)

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator))

    def _load(self, img_path: Path, ann_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
        img, lab = read_image(img_path), read_mask(ann_path)
        if img.shape[:2] != lab.shape:
            raise DataError(ann_path, f"annotation size differs from frame {img_path}")
        x = data.resize_images(data.images_to_tensor([img]), self.size).float() / 255.0
        y = data.resize_labels(torch.from_numpy(lab)[None], self.size)[0]
        return pad_to_multiple(x.to(self.device), self.pad), y.to(self.device)

    def sample(self, tries: int = 20) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int] | None:
        """(memory image, memory object masks, query image, query channel target, N) or None."""
        for _ in range(tries):
            video = self.videos[self._randint(len(self.videos))]
            t = self._randint(len(video) - 1)
            k = 1 + self._randint(min(self.cfg.train_max_skip, len(video) - 1 - t))
            mem_img, mem_lab = self._load(*video[t])
            ids = [int(v) for v in torch.unique(mem_lab).tolist() if v not in (0, data.VOID)]
            if not ids:
                continue
            order = torch.randperm(len(ids), generator=self.generator)[: self.cfg.train_max_objects].tolist()
            ids = sorted(ids[i] for i in order)
            lut = torch.zeros(256, dtype=torch.int64, device=self.device)
            lut[torch.tensor(ids, device=self.device)] = torch.arange(1, len(ids) + 1, device=self.device)
            q_img, q_lab = self._load(*video[t + k])
            target = lut[q_lab.clamp(0, 255)]
            target[q_lab == data.VOID] = IGNORE
            masks = pad_to_multiple(one_hot_objects(lut[mem_lab.clamp(0, 255)], len(ids)), self.pad)
            return mem_img, masks, q_img, target, len(ids)
        return None

    def train_step(self, iteration: int) -> dict[str, float]:
        self.optimizer.zero_grad(set_to_none=True)
        losses = []
        for _ in range(self.cfg.train_batch):
            batch = self.sample()
            if batch is None:
                continue
            mem_img, masks, q_img, target, n = batch
            keys, values = self.model.memorize(mem_img, masks)
            ps = self.model.segment(q_img, keys, values)
            logits = crop_padding(soft_aggregate(ps, n + 1), self.pad)
            losses.append(F.cross_entropy(logits[None], target[None], ignore_index=IGNORE))
        if not losses:
            raise DataError(self.videos[0][0][1].parent, "no training frame with a foreground object was drawn")
        loss = torch.stack(losses).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite tiny-STM loss at iteration {iteration}; lower train_lr")
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach())}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])


def train_tiny(davis_root: str | Path, sequences: list[str], out_dir: str | Path, cfg: STMConfig, seed: int = 0,
               device: str | torch.device = "cpu", progress: bool = True) -> Path:
    """Train (or resume) a tiny STM; writes ``out/stm_tiny.pth`` (plain state dict for ``load_stm_weights``)."""
    out_dir = Path(out_dir)
    torch.manual_seed(seed)  # the random init depends on the seed only
    model = build_model(cfg)
    trainer = PairTrainer(model, cfg, train_videos(davis_root, sequences), device, seed)
    loop_cfg = LoopConfig(iterations=cfg.train_iterations, checkpoint_every=cfg.checkpoint_every,
                          log_every=cfg.log_every, seed=seed, progress=progress, desc="stm tiny")
    run_training(trainer, out_dir, loop_cfg, meta={"sequences": sequences, "backbone": cfg.backbone,
                                                   "width": cfg.width})
    path = out_dir / WEIGHTS_FILE
    torch_save({k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}, path)
    return path
