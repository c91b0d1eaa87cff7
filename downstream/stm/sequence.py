"""STM on one DAVIS sequence: read frames and the first mask, relabel objects to channels, inject synthetic
pairs, write DAVIS-palette predictions and ``done.json``.

Inputs are read with the OSVOS helpers (``downstream.osvos.data``): DAVIS-2017 layout; "2016" mode merges all
objects into one foreground (as STM's ``-y 16`` does from a DAVIS-2017 root, reference notes §2.2/§6.3);
"2017" mode tracks the object ids present in frame 0.

Rules (documented behaviour):

* Objects: the ids of frame 0 (void 255 excluded) are mapped to channels 1..N in increasing order (identical
  to the official ``num_objects = max(first mask)`` for DAVIS's contiguous ids; with gaps, no empty channel
  is created). More than 10 objects -> DataError naming the mask (K = 11 channels).
* STM only tracks objects of frame 0: an id that appears only in later annotations is predicted as
  background; a warning is logged and the ids are recorded in ``done.json`` (``untracked_objects``).
* Synthetic masks carry the same object ids as frame 0 (OSMIS is trained on frame 0's pair); they are resized
  to the frame size (image bilinear, mask nearest, ``osvos.data.load_synthetic_pool``) and relabelled with the
  same id -> channel map (2016 mode: all foreground merged). Ids unknown to frame 0 become background.
  A pool smaller than ``max_synthetic`` is used whole (warning; ``synthetic_used`` in ``done.json``).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_core.errors import ConfigError, DataError
from gan_core.provenance import provenance
from gan_core.utils.atomic import write_json
from gan_core.utils.dataclass_config import to_dict
from gan_core.utils.images import read_image, read_mask, write_mask

from ..osvos import data
from .config import MAX_OBJECTS, STMConfig
from .inference import run_video
from .model import STM

log = logging.getLogger(__name__)
VOID = data.VOID


def channel_lut(ids: list[int], mode: str) -> np.ndarray:
    """Lookup table label value (0..255) -> channel (0 = background / not tracked)."""
    lut = np.zeros(256, dtype=np.int64)
    if mode == "2016":
        lut[1:VOID] = 1
    else:
        lut[np.asarray(ids, dtype=np.int64)] = np.arange(1, len(ids) + 1)
    return lut


def to_channels(label: np.ndarray | torch.Tensor, lut: np.ndarray) -> torch.Tensor:
    lab = torch.as_tensor(np.asarray(label)).long().clamp(0, 255)
    return torch.from_numpy(lut)[lab]


def first_frame_objects(first_label: np.ndarray, mode: str, ann_path: Path) -> list[int]:
    """Object ids tracked from frame 0; DataError if there are none or (2017 mode) more than 10."""
    present = sorted(int(v) for v in np.unique(first_label) if v not in (0, VOID))
    if mode == "2017" and len(present) > MAX_OBJECTS:
        raise DataError(ann_path, f"first-frame annotation has {len(present)} objects {present}; STM handles at "
                                  f"most {MAX_OBJECTS} (K = {MAX_OBJECTS + 1} channels)")
    return data.object_ids(first_label, mode, ann_path)


untracked_objects = data.untracked_objects  # shared with OSVOS (downstream.osvos.data)


def standard_memory_pairs(pool: tuple[torch.Tensor, torch.Tensor] | None, first_image: np.ndarray,
                          first_channels: np.ndarray | torch.Tensor, n: int, seed: int
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Extra memory pairs with OSVOS' standard augmentation (flip, zoom, rotation), seeded.

    ``pool`` = (uint8 images (S,3,H,W), channel maps (S,H,W)) of synthetic pairs, or None for copies of frame 0.
    Each of the ``n`` returned pairs is an independently augmented draw (images stay uint8, maps stay integer).
    """
    from ..osvos.augment import standard_augment

    gen = torch.Generator().manual_seed(int(seed) + 7919)
    if pool is None:
        img0 = torch.from_numpy(np.ascontiguousarray(first_image)).permute(2, 0, 1)[None]
        lab0 = torch.as_tensor(np.asarray(first_channels))[None]
        images, labels = img0.expand(n, -1, -1, -1), lab0.expand(n, -1, -1)
    else:
        idx = torch.randperm(len(pool[0]), generator=gen)[:n]
        images, labels = pool[0][idx], torch.as_tensor(pool[1])[idx]
    aug_img, aug_lab = standard_augment(images.float(), labels[:, None].float(), gen)
    return aug_img.round().clamp(0, 255).to(torch.uint8), aug_lab[:, 0].round().to(torch.int64)


def segment_sequence(model: STM, davis_root: str | Path, sequence: str, mode: str,
                     synthetic_manifest: str | Path | None, out_dir: str | Path, cfg: STMConfig, seed: int = 0,
                     device: str | torch.device = "cpu", weights: str | Path | None = None) -> dict[str, Any]:
    """Run STM on ``sequence``; write ``out/predictions/<frame>.png`` (object ids, DAVIS palette) and
    ``out/done.json``. A finished run (``done.json`` present) returns its metadata without recomputing."""
    mode = data.check_mode(mode)
    out_dir = Path(out_dir)
    done_path = out_dir / "done.json"
    if done_path.exists():
        return json.loads(done_path.read_text())
    if cfg.synthetic and synthetic_manifest is None:
        raise ConfigError("STMConfig.synthetic is true but no synthetic manifest was given")

    frame_paths = data.sequence_frames(davis_root, sequence)
    ann_path = Path(davis_root) / "Annotations" / "480p" / sequence / f"{frame_paths[0].stem}.png"
    frames = [read_image(p) for p in frame_paths]
    size = frames[0].shape[:2]
    for p, f in zip(frame_paths, frames):
        if f.shape[:2] != size:
            raise DataError(p, f"frame size {f.shape[1::-1]} differs from frame 0 ({size[::-1]})")
    first_label = read_mask(ann_path)
    if first_label.shape != size:
        raise DataError(ann_path, f"annotation size {first_label.shape[::-1]} differs from frame {frame_paths[0]}")
    ids = first_frame_objects(first_label, mode, ann_path)
    lut = channel_lut(ids, mode)
    untracked = untracked_objects(davis_root, sequence, ids, mode)
    if untracked:
        log.warning("%s: objects %s appear after frame 0; STM tracks only the objects of frame 0 %s, so they "
                    "are predicted as background", sequence, untracked, ids)

    synthetic = None
    n_pool = 0
    if cfg.synthetic:
        syn_images, syn_labels = data.load_synthetic_pool(data.read_synthetic_manifest(synthetic_manifest), size)
        n_pool = len(syn_images)
        if n_pool < cfg.max_synthetic:
            log.warning("%s: synthetic pool has %d pairs < max_synthetic %d; using all of them", sequence, n_pool,
                        cfg.max_synthetic)
        synthetic = (syn_images, to_channels(syn_labels, lut))
    if cfg.standard_aug:
        synthetic = standard_memory_pairs(synthetic, frames[0], to_channels(first_label, lut), cfg.max_synthetic,
                                          seed)

    result = run_video(model, frames, to_channels(first_label, lut), len(ids),
                       mem_every=cfg.mem_every, synthetic=synthetic,
                       max_synthetic=cfg.max_synthetic if (cfg.synthetic or cfg.standard_aug) else 0, seed=seed,
                       device=device,
                       resolution=cfg.resolution, bf16=cfg.bf16)
    id_of_channel = np.asarray([0] + list(ids), dtype=np.int64)
    pred_dir = out_dir / "predictions"
    for p, lab in zip(frame_paths, result.labels.numpy()):
        write_mask(pred_dir / f"{p.stem}.png", id_of_channel[lab], palette=True)

    meta = {"sequence": sequence, "mode": mode, "objects": ids, "untracked_objects": untracked,
            "seed": int(seed), "n_frames": len(frame_paths), "synthetic_pool": n_pool,
            "synthetic_requested": cfg.max_synthetic if cfg.synthetic else 0,
            "synthetic_used": result.n_synthetic, "synthetic_indices": result.synthetic_indices,
            "memory_sizes": result.memory_sizes, "weights": None if weights is None else str(weights),
            "architecture": {"backbone": model.backbone, "key_dim": model.key_dim, "value_dim": model.value_dim,
                             "decoder_dim": model.decoder_dim},
            "config": to_dict(cfg), "provenance": provenance(to_dict(cfg), seed=int(seed))}
    write_json(done_path, meta)
    return meta
