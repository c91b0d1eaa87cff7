"""STM test-time protocol with a memory-injection hook (reference notes downstream-protocols §2.2).

Official protocol (``eval_DAVIS.py`` ``Run_video(..., Mem_every=5)``):

* frame 0's annotation is the given mask; its prediction is that mask;
* for t = 1 .. T-1: frame t-1 is encoded with its *soft* mask (the softmax of the previous prediction, the
  annotation for t-1 = 0) and read together with the permanent memory; frame t is segmented; then, if t-1 is
  in {0, mem_every, 2 mem_every, ...}, frame t-1 joins the permanent memory. So frame t reads the frames
  {s in the schedule, s <= t-2} plus frame t-1;
* the label of a pixel is the argmax over K = 11 channels of softmax(Soft_aggregation logits);
* frames (RGB / 255) and masks are zero-padded to a multiple of 16 (split as evenly as possible, the extra
  pixel at the bottom/right) and the output is cropped back.

Synthetic pairs (thesis l.1839): "added synthesized image-mask pairs to the STM memory bank at step 0, before
processing the first video frame ... limit the number of added samples to 10, which were sampled randomly from
the synthetic pool". They are encoded with their hard masks (relabelled to the video's object channels by the
caller) and form the initial permanent memory, kept for the whole video. Memory attention is invariant to the
order of memory frames, so this equals the reference notes' recommendation ``keys = cat(synthetic, frame0)``.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from gan_core.errors import ConfigError

from .model import NUM_CHANNELS, STM, STRIDE, soft_aggregate

MAX_OBJECTS = NUM_CHANNELS - 1


# --------------------------------------------------------------------------------------------- padding
def pad_amounts(h: int, w: int, multiple: int = STRIDE) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding that makes (h, w) multiples of ``multiple``; the smaller half
    goes left/top (as the official ``pad_divide_by``)."""
    dh, dw = (-h) % multiple, (-w) % multiple
    return dw // 2, dw - dw // 2, dh // 2, dh - dh // 2


def pad_to_multiple(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    return F.pad(x, pad) if any(pad) else x


def crop_padding(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    left, right, top, bottom = pad
    return x[..., top : x.shape[-2] - bottom, left : x.shape[-1] - right]


# --------------------------------------------------------------------------------------------- memory
class MemoryBank:
    """Permanent memory: lists of per-frame keys (N,Ck,1,h,w) and values (N,Cv,1,h,w)."""

    def __init__(self) -> None:
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    def add(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.keys.append(keys)
        self.values.append(values)

    @property
    def size(self) -> int:
        """Number of memory frames T held permanently."""
        return sum(int(k.shape[2]) for k in self.keys)

    def read_with(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Permanent memory plus one extra (temporary) frame, concatenated along T."""
        return torch.cat(self.keys + [keys], dim=2), torch.cat(self.values + [values], dim=2)


def memory_schedule(num_frames: int, mem_every: int) -> set[int]:
    """Frames that join the permanent memory: 0, mem_every, 2 mem_every, ... (official ``to_memorize``)."""
    return set(range(0, num_frames, mem_every))


def expected_memory_sizes(num_frames: int, mem_every: int, n_synthetic: int = 0) -> list[int]:
    """Memory frames read when segmenting frames 1..T-1: synthetic + {s in schedule, s <= t-2} + frame t-1."""
    sched = memory_schedule(num_frames, mem_every)
    return [n_synthetic + sum(1 for s in sched if s <= t - 2) + 1 for t in range(1, num_frames)]


# --------------------------------------------------------------------------------------------- inputs
def one_hot_objects(labels: torch.Tensor, num_objects: int) -> torch.Tensor:
    """Label map(s) (..., H, W) with channel values 0..num_objects (others, e.g. void, ignored) -> object masks
    (..., num_objects, H, W) as float (background channel omitted)."""
    ch = torch.arange(1, num_objects + 1, device=labels.device).view(-1, 1, 1)
    return (labels.unsqueeze(-3) == ch).float()


def to_float_frames(frames: torch.Tensor | Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 (T,3,H,W) tensor or a list of HxWx3 uint8 arrays -> uint8 tensor (T,3,H,W)."""
    if isinstance(frames, torch.Tensor):
        if frames.dim() != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames must be (T,3,H,W), got {tuple(frames.shape)}")
        return frames
    return torch.from_numpy(np.stack(list(frames))).permute(0, 3, 1, 2).contiguous()


def draw_synthetic(n_pool: int, max_synthetic: int, seed: int) -> torch.Tensor:
    """Indices of min(max_synthetic, n_pool) pool pairs drawn at random without replacement (seeded)."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n_pool, generator=g)[: min(max_synthetic, n_pool)]


@dataclass
class VideoResult:
    labels: torch.Tensor
    """(T,H,W) int64 channel indices 0..num_objects (0 = background) at the input size."""
    memory_sizes: list[int] = field(default_factory=list)
    """Memory frames read for frames 1..T-1 (synthetic + permanent + the previous frame)."""
    synthetic_indices: list[int] = field(default_factory=list)
    """Pool indices of the injected synthetic pairs."""

    @property
    def n_synthetic(self) -> int:
        return len(self.synthetic_indices)


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@torch.no_grad()
def run_video(model: STM, frames: torch.Tensor | Sequence[np.ndarray], first_mask: torch.Tensor | np.ndarray,
              num_objects: int, mem_every: int = 5,
              synthetic: tuple[torch.Tensor, torch.Tensor] | None = None, max_synthetic: int = 10,
              seed: int = 0, device: str | torch.device | None = None, resolution: tuple[int, int] | None = None,
              bf16: bool = False) -> VideoResult:
    """Segment a video with STM given frame 0's mask.

    ``frames``: uint8 (T,3,H,W) or HxWx3 arrays; ``first_mask``: (H,W) channel indices 0..num_objects (other
    values such as void 255 belong to no object); ``synthetic``: uint8 images (S,3,H',W') and label maps
    (S,H',W') already relabelled to the same channels (objects absent from a synthetic mask are zero
    channels), or None. min(max_synthetic, S) pairs drawn with ``seed`` are memorised before frame 0.
    ``resolution``: optional (H, W) working size (frames/synthetic resized; probabilities resized back).
    """
    if not 1 <= int(num_objects) <= MAX_OBJECTS:
        raise ConfigError(f"STM handles 1..{MAX_OBJECTS} objects (K = {NUM_CHANNELS} channels), got {num_objects}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    video = to_float_frames(frames)
    first = torch.as_tensor(np.asarray(first_mask) if not isinstance(first_mask, torch.Tensor) else first_mask)
    native = tuple(video.shape[-2:])
    if tuple(first.shape) != native:
        raise ValueError(f"first mask {tuple(first.shape)} differs from the frame size {native}")
    work = tuple(resolution) if resolution is not None else native
    pad = pad_amounts(*work)

    def prep_image(img_u8: torch.Tensor) -> torch.Tensor:  # (B,3,h,w) uint8 -> padded float [0,1]
        x = img_u8.to(device).float()
        if tuple(x.shape[-2:]) != work:
            x = F.interpolate(x, size=work, mode="bilinear", align_corners=False,
                              antialias=bool(work[0] < x.shape[-2])).clamp(0, 255)
        return pad_to_multiple(x / 255.0, pad)

    def prep_label(lab: torch.Tensor) -> torch.Tensor:  # (h,w) channels -> padded (N,H,W) object masks
        lab = lab.to(device)
        if tuple(lab.shape) != work:
            lab = F.interpolate(lab[None, None].float(), size=work, mode="nearest")[0, 0].long()
        return pad_to_multiple(one_hot_objects(lab, num_objects), pad)

    bank = MemoryBank()
    syn_idx: list[int] = []
    ac = _autocast(device, bf16)
    if synthetic is not None and max_synthetic > 0:
        syn_images, syn_labels = synthetic
        if len(syn_images) != len(syn_labels):
            raise ValueError("synthetic images and labels differ in number")
        syn_idx = draw_synthetic(len(syn_images), max_synthetic, seed).tolist()
        for i in syn_idx:
            with ac:
                k, v = model.memorize(prep_image(syn_images[i : i + 1]), prep_label(syn_labels[i]))
            bank.add(k.float(), v.float())

    labels = torch.zeros((len(video),) + native, dtype=torch.int64)
    labels[0] = torch.where((first >= 0) & (first <= num_objects), first, torch.zeros_like(first)).long()
    prev_masks = prep_label(first)  # soft masks of frame t-1 (N,H,W); the annotation for t = 1
    sched = memory_schedule(len(video), mem_every)
    sizes = []
    for t in range(1, len(video)):
        with ac:
            k, v = model.memorize(prep_image(video[t - 1 : t]), prev_masks)
        k, v = k.float(), v.float()
        keys, values = bank.read_with(k, v)
        sizes.append(int(keys.shape[2]))
        with ac:
            ps = model.segment(prep_image(video[t : t + 1]), keys, values)
        probs = F.softmax(soft_aggregate(ps.float()), dim=0)  # (K,Hp,Wp)
        probs = crop_padding(probs, pad)
        prev_masks = pad_to_multiple(probs[1 : num_objects + 1], pad)
        if t - 1 in sched:
            bank.add(k, v)
        if tuple(probs.shape[-2:]) != native:
            probs = F.interpolate(probs[None], size=native, mode="bilinear", align_corners=False)[0]
        labels[t] = probs.argmax(dim=0).cpu()
    return VideoResult(labels=labels, memory_sizes=sizes, synthetic_indices=syn_idx)
