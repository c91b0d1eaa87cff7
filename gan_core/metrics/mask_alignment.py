"""OSMIS mask-alignment score: a UNet trained on generated image-mask pairs, tested on the real image.

Thesis l.1760: "we take a UNet ... and train it on the generated image-mask pairs for 500 epochs.
After training, we compute its mIoU performance on the original real image, augmented with
standard geometric transformations." Protocol facts from the official evaluation code (reference
notes, downstream-protocols §7, official-implementations §mIoU):

* Network: a UNet with an ImageNet ResNet-18 encoder (official: usuyama's ResNetUNet on
  torchvision ``resnet18(pretrained=True)``). Here: ``segmentation_models_pytorch.Unet`` with a
  ``resnet18`` encoder; the ImageNet weights are the torchvision file of manifest entry
  ``tv_resnet18`` loaded with ``torch.load(weights_only=True)``; without it the encoder is
  randomly initialised and the result is labelled ``random-init(seed=S)`` (not a thesis number).
  The decoder differs from usuyama's (smp's standard UNet decoder).
* Training: ``iterations`` = 500 batches of 5 generated pairs taken in order (cycling), Adam
  lr 1e-4 (the official StepLR has gamma 1, i.e. a constant rate), loss 0.5 BCE-with-logits +
  0.5 soft Dice (smooth 1) on one-hot masks. The training pairs are augmented like the test image.
* Images are resized to the generated resolution (the real one, bilinear; its mask, nearest)
  and scaled to [-1, 1] (no ImageNet mean/std, as the official code).
* Augmentation (each sample independently): horizontal flip with p = 0.15, vertical and
  horizontal translation by int(side * U(0.05, 0.3)) pixels in a random direction, each with
  p = 0.3, the uncovered strip filled by mirroring (= reflection padding). Implemented with
  :func:`gan_core.augment.diffaug.apply_params` (integer shifts: exact resampling).
* Evaluation: ``eval_batches`` = 101 batches of 5 augmented copies of the real image; prediction
  = argmax over the class channels. Reported:
  - ``thresholded_iou`` (the official number): per image and class
    ``IoU = (|P&T| + 1e-6) / (|P|T| + 1e-6)``, scored ``ceil(clamp(20 (IoU - 0.5), 0, 10)) / 10``
    and averaged over images x classes (background included; a class absent from both scores 1);
  - ``miou``: plain mIoU from the confusion matrix accumulated over all test pixels;
  - ``pixel_accuracy``.
* Masks: multi-class masks are one-hot encoded with K = (largest real label) + 1 channels; the
  void label ``ignore_index`` (255) is excluded from the loss and the scores. The official code
  reads painted fake masks and treats any mask with a value > 20/256 as binary, which collapses
  multi-class masks to object-vs-background (and would mismatch the UNet's channels with a
  multi-class real mask). ``official_binary_quirk=True`` reproduces the collapse (every non-zero
  label, void included, becomes 1; K = 2); it is off by default.
* The official code also trains the reverse direction (real -> fakes); that is not part of the
  thesis protocol and not implemented here.

Training runs through :func:`gan_core.train.loop.run_training`, so a killed job resumes from
``work_dir/checkpoint.pt``; the augmentation of iteration ``i`` is drawn from a generator seeded
with (seed, i) and the evaluation from its own seeded generator, so results do not depend on
where a run was interrupted.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..augment.diffaug import AugmentParams, apply_params
from ..errors import ConfigError, DataError
from ..train.loop import LoopConfig, run_training
from ..utils.atomic import write_json
from ..utils.dataclass_config import to_dict
from .segmentation import ConfusionAccumulator, per_class_iou, per_image_class_iou, pixel_accuracy, thresholded_iou


@dataclass
class MaskAlignmentConfig:
    """Settings of the UNet mask-alignment protocol (defaults: official code, reference notes §7)."""

    # Thesis l.1760 says "500 epochs"; the official loop counts batches (its dataset length is 1e7,
    # one "epoch" = one batch), so the faithful reading is 500 iterations.
    iterations: int = 500
    batch_size: int = 5              # official
    lr: float = 1e-4                 # official, Adam, constant (StepLR gamma = 1.0)
    bce_weight: float = 0.5          # loss = bce_weight * BCE + (1 - bce_weight) * Dice (official 0.5)
    dice_smooth: float = 1.0         # official dice_loss smooth
    aug_prob: float = 0.3            # official prob_augm (translations)
    hflip_prob: float = 0.15         # official: prob_augm / 2
    translate_fraction: tuple[float, float] = (0.05, 0.3)  # official shift range, fraction of the side
    augment_train: bool = True       # official: the generated pairs are augmented too
    eval_batches: int = 101          # official: batches 0..100 of the augmented real image
    encoder: str = "resnet18"        # official: ResNet-18
    iou_smooth: float = 1e-6         # official SMOOTH of the thresholded IoU
    official_binary_quirk: bool = False  # collapse all masks to object/background as the official code
    ignore_index: int = 255          # void label (DAVIS), excluded from loss and scores
    checkpoint_every: int = 100      # resumable-loop checkpoint period (iterations)
    bf16: bool = False               # bf16 autocast of the UNet forward on CUDA

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.batch_size < 1 or self.eval_batches < 1:
            raise ConfigError("mask alignment: iterations, batch_size and eval_batches must be >= 1")
        lo, hi = self.translate_fraction
        if not 0.0 <= lo <= hi < 1.0:
            raise ConfigError(f"mask alignment: translate_fraction must satisfy 0 <= lo <= hi < 1, got {self.translate_fraction}")


# ---------------------------------------------------------------------------- augmentation
def sample_flip_shift(batch: int, height: int, width: int, cfg: MaskAlignmentConfig,
                      generator: torch.Generator) -> AugmentParams:
    """Per-sample flip / integer translation of the official protocol as an affine map
    (output -> input, normalised coordinates, align_corners=False)."""
    def u() -> torch.Tensor:
        return torch.rand(batch, generator=generator, dtype=torch.float64)

    flip = torch.where(u() < cfg.hflip_prob, -1.0, 1.0)
    lo, hi = cfg.translate_fraction

    def shift(side: int) -> torch.Tensor:
        do = u() < cfg.aug_prob
        mag = torch.floor(side * (u() * (hi - lo) + lo))  # official: int(side * margin)
        sign = torch.where(u() < 0.5, -1.0, 1.0)
        return torch.where(do, sign * mag, torch.zeros_like(mag))

    ty, tx = shift(height), shift(width)
    theta = torch.zeros(batch, 2, 3, dtype=torch.float64)
    # in(x) = flip * (x - tx), in(y) = y - ty, in pixel units about the centre -> normalised
    theta[:, 0, 0] = flip
    theta[:, 0, 2] = -flip * 2.0 * tx / width
    theta[:, 1, 1] = 1.0
    theta[:, 1, 2] = -2.0 * ty / height
    return AugmentParams(theta.float())


def augment_pairs(images: torch.Tensor, labels: torch.Tensor, cfg: MaskAlignmentConfig,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the same random flip/translation to images (B, 3, H, W) and label maps (B, H, W)."""
    params = sample_flip_shift(images.shape[0], images.shape[2], images.shape[3], cfg, generator)
    (out,), lab = apply_params([images], labels[:, None].float(), params)
    return out, lab[:, 0].round().long()


# ---------------------------------------------------------------------------------- model
class PaddedUnet(nn.Module):
    """smp.Unet that pads inputs (replicate) to a multiple of 32 and crops the logits back."""

    def __init__(self, num_classes: int, encoder: str = "resnet18"):
        super().__init__()
        import segmentation_models_pytorch as smp  # imported lazily: the import takes seconds

        self.net = smp.Unet(encoder_name=encoder, encoder_weights=None, classes=num_classes)
        self.stride = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return self.net(x)[..., :h, :w]


def load_encoder_weights(model: PaddedUnet, path: str | Path) -> str:
    """Load torchvision ResNet weights (``fc.*`` dropped) into the encoder; returns the label."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable or not a tensor-only file
        raise DataError(path, f"not a loadable state dict ({exc})") from exc
    if not isinstance(state, dict) or "conv1.weight" not in state:
        raise DataError(path, "not a torchvision ResNet state dict (no key 'conv1.weight')")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        model.net.encoder.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DataError(path, f"does not match the {model.net.encoder.__class__.__name__} layout: {exc}") from exc
    return f"imagenet:{path.name}"


def bce_dice_loss(logits: torch.Tensor, labels: torch.Tensor, cfg: MaskAlignmentConfig) -> torch.Tensor:
    """bce_weight * BCE-with-logits + (1 - bce_weight) * soft Dice on one-hot targets; void pixels
    (``ignore_index``) carry no loss. Dice per sample and class, averaged (official dice_loss)."""
    k = logits.shape[1]
    logits = logits.float()
    valid = (labels != cfg.ignore_index)
    onehot = F.one_hot(torch.where(valid, labels, 0), k).permute(0, 3, 1, 2).float()
    w = valid[:, None].float().expand_as(onehot)
    bce = F.binary_cross_entropy_with_logits(logits, onehot, weight=w, reduction="sum") / w.sum().clamp_min(1.0)
    prob = torch.sigmoid(logits) * w
    tgt = onehot * w
    inter = (prob * tgt).sum(dim=(2, 3))
    dice = 1.0 - (2.0 * inter + cfg.dice_smooth) / (prob.sum(dim=(2, 3)) + tgt.sum(dim=(2, 3)) + cfg.dice_smooth)
    return cfg.bce_weight * bce + (1.0 - cfg.bce_weight) * dice.mean()


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


class MaskAlignmentTrainer:
    """Trainer protocol of the resumable loop: one UNet step on a batch of generated pairs."""

    def __init__(self, model: PaddedUnet, images: torch.Tensor, labels: torch.Tensor,
                 cfg: MaskAlignmentConfig, seed: int):
        self.model, self.images, self.labels, self.cfg, self.seed = model, images, labels, cfg, seed
        self.device = images.device
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def train_step(self, iteration: int) -> dict[str, float]:
        cfg, n = self.cfg, self.images.shape[0]
        idx = (torch.arange(cfg.batch_size) + iteration * cfg.batch_size) % n  # in order, cycling (official)
        x, y = self.images[idx.to(self.device)], self.labels[idx.to(self.device)]
        if cfg.augment_train:
            gen = torch.Generator().manual_seed(_mix(self.seed, iteration))
            x, y = augment_pairs(x, y, cfg, gen)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with _autocast(self.device, cfg.bf16):
            logits = self.model(x)
        loss = bce_dice_loss(logits, y, cfg)
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach())}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


def _mix(seed: int, stream: int) -> int:
    return (int(seed) * 1_000_003 + int(stream) * 7_919 + 12_345) % (2**63 - 1)


@torch.no_grad()
def evaluate(model: nn.Module, image: torch.Tensor, labels: torch.Tensor, num_classes: int,
             cfg: MaskAlignmentConfig, seed: int) -> dict[str, Any]:
    """Score ``model`` on ``eval_batches`` batches of augmented copies of one image (3, H, W) / (H, W)."""
    model.eval()
    device = image.device
    gen = torch.Generator().manual_seed(_mix(seed, -1))
    conf = ConfusionAccumulator(num_classes, cfg.ignore_index, device)
    scores = []
    x0 = image[None].expand(cfg.batch_size, -1, -1, -1)
    y0 = labels[None].expand(cfg.batch_size, -1, -1)
    for _ in range(cfg.eval_batches):
        x, y = augment_pairs(x0, y0, cfg, gen)
        with _autocast(device, cfg.bf16):
            pred = model(x).float().argmax(dim=1)  # argmax of sigmoid = argmax of logits
        conf.update(pred, y)
        scores.append(thresholded_iou(per_image_class_iou(pred, y, num_classes, cfg.ignore_index, cfg.iou_smooth)).mean())
    iou = per_class_iou(conf.matrix)
    present = iou[~np.isnan(iou)]
    return {
        "thresholded_iou": float(torch.stack(scores).mean()),
        "miou": float(present.mean()) if present.size else float("nan"),
        "pixel_accuracy": pixel_accuracy(conf.matrix),
        "per_class_iou": [None if math.isnan(v) else float(v) for v in iou.tolist()],
    }


# --------------------------------------------------------------------------- data helpers
def prepare_labels(real_mask: torch.Tensor, fake_masks: torch.Tensor,
                   cfg: MaskAlignmentConfig) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Returns (real, fake, K): label maps remapped for the quirk and the number of classes."""
    if cfg.official_binary_quirk:
        return (real_mask != 0).long(), (fake_masks != 0).long(), 2
    valid = real_mask[real_mask != cfg.ignore_index]
    if valid.numel() == 0:
        raise ValueError("the real mask has no labelled pixel")
    k = int(valid.max()) + 1
    if k < 2:
        raise ValueError("the real mask has only background (need at least one object class)")
    fv = fake_masks[fake_masks != cfg.ignore_index]
    if fv.numel() and (int(fv.min()) < 0 or int(fv.max()) >= k):
        raise ValueError(f"generated masks have labels up to {int(fv.max())} but the real mask has classes 0..{k - 1}")
    return real_mask.long(), fake_masks.long(), k


def _resize_real(image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    if tuple(image.shape[-2:]) == tuple(size):
        return image, mask
    img = F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    lab = F.interpolate(mask[None, None].float(), size=size, mode="nearest")[0, 0].long()
    return img, lab


def _check_work_dir(work_dir: Path, record: dict[str, Any]) -> None:
    """Refuse to resume a checkpoint made with other settings or data."""
    path = work_dir / "mask_alignment_run.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(record, default=str)):
            raise ConfigError(
                f"{path}: {work_dir} holds a run with other settings or data ({old}); "
                "delete the folder or use another work dir"
            )
    else:
        write_json(path, record)


def run_mask_alignment(
    fake_images: torch.Tensor, fake_masks: torch.Tensor, real_image: torch.Tensor, real_mask: torch.Tensor,
    work_dir: str | Path, cfg: MaskAlignmentConfig | None = None, seed: int = 0,
    device: torch.device | str = "cpu", encoder_weights: str | Path | None = None, progress: bool = False,
) -> dict[str, Any]:
    """Train the UNet on the generated pairs (resumable, in ``work_dir``) and score it on the real pair.

    Inputs: fakes (N, 3, H, W) in [-1, 1] and (N, H, W) labels; real (3, Hr, Wr) in [-1, 1] and
    (Hr, Wr) labels (resized to H x W). Returns the scores plus ``weights_label`` and ``num_classes``.
    """
    cfg = cfg or MaskAlignmentConfig()
    device = torch.device(device)
    if fake_images.dim() != 4 or fake_masks.shape != (fake_images.shape[0], *fake_images.shape[2:]):
        raise ValueError(f"fake images {tuple(fake_images.shape)} and masks {tuple(fake_masks.shape)} do not match")
    real_lab, fake_lab, k = prepare_labels(real_mask, fake_masks, cfg)
    real_img, real_lab = _resize_real(real_image, real_lab, tuple(fake_images.shape[-2:]))

    torch.manual_seed(seed)
    model = PaddedUnet(k, cfg.encoder)
    label = load_encoder_weights(model, encoder_weights) if encoder_weights else f"random-init(seed={seed})"
    model.to(device)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    _check_work_dir(work_dir, {"config": to_dict(cfg), "seed": seed, "weights_label": label, "num_classes": k,
                               "n_fakes": int(fake_images.shape[0]), "size": list(fake_images.shape[-2:])})
    trainer = MaskAlignmentTrainer(model, fake_images.float().to(device), fake_lab.to(device), cfg, seed)
    loop = LoopConfig(iterations=cfg.iterations, checkpoint_every=cfg.checkpoint_every,
                      log_every=max(1, min(50, cfg.iterations)), seed=seed, progress=progress,
                      desc="mask-alignment UNet")
    run_training(trainer, work_dir, loop, meta={"weights_label": label})
    scores = evaluate(model, real_img.float().to(device), real_lab.to(device), k, cfg, seed)
    return {**scores, "num_classes": k, "weights_label": label, "n_fakes": int(fake_images.shape[0]),
            "resolution": list(fake_images.shape[-2:])}
