"""One resumable training loop for every model (GANs and downstream fine-tuning).

A model plugs in through the :class:`Trainer` protocol. The loop owns everything
that is not model-specific: iteration counting, periodic atomic checkpoints with
all RNG states, resuming after a kill, progress bars and a JSON-lines log.

Resuming is exact: the checkpoint stores the trainer state (models, EMA,
optimisers), the iteration, and the torch / CUDA / numpy / python RNG states, so
that iterations after a resume equal those of an uninterrupted run in
deterministic mode.
"""
from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from ..utils.atomic import torch_save, write_json, write_text

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
DONE_NAME = "done.json"


class Trainer(Protocol):
    """What the loop needs from a model."""

    def train_step(self, iteration: int) -> dict[str, float]:
        """Run one training iteration; return scalar losses for the log."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (models, EMA, optimisers, schedules). Tensors only + plain types."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""


@dataclass
class LoopConfig:
    iterations: int
    checkpoint_every: int = 1000
    log_every: int = 100
    seed: int = 0
    progress: bool = True
    desc: str = "train"
    is_main: bool = True  # torch.distributed: only the main rank (0) writes checkpoints, logs and done.json


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load our own checkpoint (written by this loop) with weights_only=True."""
    with torch.serialization.safe_globals(_SAFE_GLOBALS):
        return torch.load(path, map_location="cpu", weights_only=True)


# RNG states are packed into tensors and plain Python values (see _pack_rng), so the
# checkpoint loads with weights_only=True without allow-listing any numpy global.
_SAFE_GLOBALS: list = []


def _pack_rng(state: dict[str, Any]) -> dict[str, Any]:
    """Convert RNG states to tensors / plain lists so that weights_only loading works."""
    np_state = state["numpy"]
    packed = {
        "torch": state["torch"],
        "numpy": [np_state[0], torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "python": [state["python"][0], list(state["python"][1]), state["python"][2]],
    }
    if "cuda" in state:
        packed["cuda"] = state["cuda"]
    return packed


def _unpack_rng(packed: dict[str, Any]) -> dict[str, Any]:
    n = packed["numpy"]
    state = {
        "torch": packed["torch"],
        "numpy": (n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]),
        "python": (packed["python"][0], tuple(packed["python"][1]), packed["python"][2]),
    }
    if "cuda" in packed:
        state["cuda"] = packed["cuda"]
    return state


def run_training(trainer: Trainer, out_dir: str | Path, cfg: LoopConfig, meta: dict[str, Any] | None = None) -> int:
    """Train until ``cfg.iterations``; resume from ``out_dir/checkpoint.pt`` if present.

    Returns the number of iterations run in this call. Writes ``done.json`` (with
    ``meta``) when training is complete; a finished run is not trained again.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / CHECKPOINT_NAME
    start = 0
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        trainer.load_state_dict(ckpt["trainer"])
        set_rng_state(_unpack_rng(ckpt["rng"]))
        start = int(ckpt["iteration"])
        log.info("resumed %s from iteration %d", out_dir, start)
    else:
        seed_everything(cfg.seed)

    log_path = out_dir / "train_log.jsonl"
    if cfg.is_main:
        _truncate_log(log_path, start)
    t0 = time.time()
    bar = tqdm(total=cfg.iterations, initial=start, desc=cfg.desc, disable=not (cfg.progress and cfg.is_main),
               mininterval=2.0)
    it = start
    with (open(log_path, "a") if cfg.is_main else open(os.devnull, "w")) as log_file:
        while it < cfg.iterations:
            losses = trainer.train_step(it)
            it += 1
            bar.update(1)
            if it % cfg.log_every == 0 or it == cfg.iterations:
                row = {"iteration": it, "elapsed_s": round(time.time() - t0, 2), **losses}
                log_file.write(json.dumps(row) + "\n")
                log_file.flush()
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(losses.items())[:4]})
            if cfg.is_main and (it % cfg.checkpoint_every == 0 or it == cfg.iterations):
                save_checkpoint(trainer, ckpt_path, it)
    bar.close()
    if cfg.is_main:
        write_json(out_dir / DONE_NAME, {"iterations": cfg.iterations, **(meta or {})})
    return it - start


def _truncate_log(log_path: Path, iteration: int) -> None:
    """Drop log rows written after the checkpoint we resume from (a kill can land between the two)."""
    if not log_path.exists():
        return
    kept = []
    for line in log_path.read_text().splitlines():
        try:
            if json.loads(line).get("iteration", 0) <= iteration:
                kept.append(line)
        except json.JSONDecodeError:  # a line cut by the kill
            continue
    write_text(log_path, "".join(row + "\n" for row in kept))


def save_checkpoint(trainer: Trainer, path: Path, iteration: int) -> None:
    torch_save({"trainer": trainer.state_dict(), "rng": _pack_rng(rng_state()), "iteration": iteration}, path)
