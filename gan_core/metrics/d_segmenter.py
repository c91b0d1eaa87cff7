"""The OASIS discriminator used as a stand-alone semantic segmenter (thesis l.1248-1251, Fig. 4.12).

"To obtain a segmentation prediction for a given image, a user just needs to feed it to our pre-trained
discriminator and select the highest activation among real classes in its (N+1)-channel output for each
pixel" (thesis l.1250); the thesis reports mIoU 40.0 on ADE20K val (l.1251).

* D's output channel 0 is the fake class and channel c+1 is label c (reference notes §1.4), so the predicted
  label is ``argmax_{c >= first} logits[c + 1]``.
* Dontcare (our choice, written down here): with ``OASISConfig.contain_dontcare_label`` (ADE20K label 0 =
  "unknown", trained with weight 0, reference notes §1.4) label 0 is not a real class: it is excluded from
  the argmax (``first`` = 1) and ground-truth pixels labelled 0 are ignored in the mIoU, i.e. the usual
  150-class ADE20K protocol. ``SegmenterConfig.exclude_dontcare=False`` keeps all N channels.
* mIoU: dataset-level confusion matrix over the split (``metrics/segmentation.py``), batched.

Discriminator weights of a run folder (``oasis_cli train``): ``RUN/discriminator.pt`` (a plain state dict,
written by :func:`export_discriminator`) when present, otherwise the ``D`` entry of ``RUN/checkpoint.pt``
(the training loop's last checkpoint, which holds D; loaded with weights_only=True).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, DataError, MissingResourceError
from ..nets.oasis import OASISDiscriminator
from ..nets.oasis_config import OASISConfig
from ..nets.patchgan import SemanticDiscriminator
from ..nets.semantic_gan_factory import SemanticGANConfig, build_discriminator
from ..train.oasis_trainer import OASISRunConfig
from ..utils.dataclass_config import from_dict
from ..utils.atomic import torch_save
from .segmentation import ConfusionAccumulator, summarise

D_WEIGHTS_NAME = "discriminator.pt"
CHECKPOINT_NAME = "checkpoint.pt"  # gan_core.train.loop.CHECKPOINT_NAME
CONFIG_NAME = "config.json"        # gan_core.train.oasis_cli.CONFIG_NAME


@dataclass
class SegmenterConfig:
    exclude_dontcare: bool = True  # label 0 = dontcare is no "real class" (module doc; our choice)
    batch: int = 8


# --------------------------------------------------------------------------------- prediction
def first_class(cfg: OASISConfig, seg: SegmenterConfig) -> int:
    """The lowest label the segmenter may predict: 1 when dontcare is excluded, else 0."""
    return 1 if (seg.exclude_dontcare and cfg.contain_dontcare_label) else 0


def logits_to_labels(logits: torch.Tensor, first: int = 0) -> torch.Tensor:
    """(B, N+1, H, W) D logits -> (B, H, W) int64 labels: argmax over the real-class channels
    ``first+1 .. N`` (channel 0 = fake never wins), mapped back to labels (channel c+1 -> label c)."""
    if logits.dim() != 4 or logits.shape[1] < first + 2:
        raise ValueError(f"expected (B, N+1, H, W) logits with N+1 >= {first + 2}, got {tuple(logits.shape)}")
    return logits[:, first + 1:].argmax(dim=1) + first


class DSegmenter(nn.Module):
    """Wraps a trained OASIS discriminator: ``forward(images in [-1, 1])`` -> (B, N+1, H, W) logits at the
    image size; :meth:`predict` -> (B, H, W) labels."""

    def __init__(self, d: nn.Module, n_classes: int, first: int = 0):
        super().__init__()
        self.d, self.n_classes, self.first = d, int(n_classes), int(first)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if isinstance(self.d, SemanticDiscriminator):  # wrapper (ablation runs): N+1 ignores the label map
            dummy = torch.zeros(images.shape[0], self.n_classes, *images.shape[-2:], device=images.device,
                                dtype=images.dtype)
            logits = self.d(images, dummy).logits[0]
        else:  # the bare OASIS U-Net: images -> (B, N+1, H, W)
            logits = self.d(images)
        if logits.shape[-2:] != images.shape[-2:]:  # PatchGAN-type D: coarser map (our choice: bilinear)
            logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return logits

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return logits_to_labels(self.forward(images), self.first)


# --------------------------------------------------------------------------------- run folder
def read_run_config(run: str | Path) -> tuple[SemanticGANConfig, OASISRunConfig]:
    """The SemanticGANConfig and OASISRunConfig recorded in ``RUN/config.json`` (as ``oasis_cli.load_run``
    reads them; the run config carries the data layout of ``oasis_cli.dataset_for``)."""
    path = Path(run) / CONFIG_NAME
    if not path.is_file():
        raise MissingResourceError("OASIS run configuration", path, hint="Train the model first (oasis_cli train).")
    try:
        resolved = json.loads(path.read_text())
        cfg = OASISConfig.from_dict(resolved["oasis"], where=str(path))
        gan = (SemanticGANConfig.from_dict(resolved["gan"], where=str(path)) if "gan" in resolved
               else SemanticGANConfig(oasis=cfg))
        return gan, from_dict(OASISRunConfig, resolved["run"], where=str(path))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(path, f"not a valid OASIS run configuration ({exc})") from exc


def _d_state(run: Path) -> tuple[dict[str, torch.Tensor], Path]:
    exported, ckpt = run / D_WEIGHTS_NAME, run / CHECKPOINT_NAME
    if exported.is_file():
        try:
            return torch.load(exported, map_location="cpu", weights_only=True), exported
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
            raise DataError(exported, f"not a loadable weights-only state dict ({exc})") from exc
    if not ckpt.is_file():
        raise MissingResourceError("OASIS discriminator weights", exported,
                                   hint=f"neither {D_WEIGHTS_NAME} nor {CHECKPOINT_NAME} in the run; train it first")
    from ..train.loop import load_checkpoint

    try:
        state = load_checkpoint(ckpt)["trainer"]["D"]
    except (KeyError, TypeError) as exc:
        raise DataError(ckpt, f"checkpoint has no trainer.D entry ({exc})") from exc
    return state, ckpt


def build_run_discriminator(gan: SemanticGANConfig, state: dict[str, torch.Tensor]) -> nn.Module:
    """The discriminator the trainer built for ``gan`` (bare U-Net keys, or the ``nets.*`` wrapper)."""
    n = gan.oasis.semantic_nc
    if any(k.startswith("nets.") for k in state):
        return build_discriminator(gan, n)
    return OASISDiscriminator(dataclasses.replace(gan.oasis, semantic_nc=n))


def load_segmenter(run: str | Path, device: torch.device | str = "cpu",
                   seg: SegmenterConfig | None = None
                   ) -> tuple[DSegmenter, SemanticGANConfig, OASISRunConfig, Path]:
    """(segmenter in eval mode, the run's GAN and run configs, the weights file used)."""
    seg = seg or SegmenterConfig()
    run = Path(run)
    gan, run_cfg = read_run_config(run)
    if not gan.d_label_encoding.startswith("n_plus_1"):
        raise ConfigError(f"{run}: the D of label encoding {gan.d_label_encoding!r} has no per-class output; "
                          "only the N+1 discriminators segment")
    state, src = _d_state(run)
    d = build_run_discriminator(gan, state)
    try:
        d.load_state_dict(state)
    except RuntimeError as exc:
        raise DataError(src, f"does not match the run's discriminator ({exc})") from exc
    model = DSegmenter(d, gan.oasis.semantic_nc, first_class(gan.oasis, seg))
    return model.to(device).eval(), gan, run_cfg, src


def export_discriminator(run: str | Path) -> Path:
    """Write ``RUN/discriminator.pt`` (the D state dict of ``RUN/checkpoint.pt``, atomically); returns it.
    Meant for the end of ``oasis_cli train`` so a run keeps D without the full checkpoint."""
    run = Path(run)
    ckpt = run / CHECKPOINT_NAME
    if not ckpt.is_file():
        raise MissingResourceError("OASIS training checkpoint", ckpt, hint="train the model first")
    from ..train.loop import load_checkpoint

    try:
        state = load_checkpoint(ckpt)["trainer"]["D"]
    except (KeyError, TypeError) as exc:
        raise DataError(ckpt, f"checkpoint has no trainer.D entry ({exc})") from exc
    torch_save(state, run / D_WEIGHTS_NAME)
    return run / D_WEIGHTS_NAME


# --------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(segmenter: DSegmenter, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             ignore_index: int | None) -> dict[str, Any]:
    """mIoU of the segmenter over (images in [-1, 1] (B, 3, H, W), labels (B, H, W)) batches: one
    dataset-level confusion matrix (``segmentation.summarise``)."""
    device = next(segmenter.parameters()).device
    acc = ConfusionAccumulator(segmenter.n_classes, ignore_index, device)
    n = 0
    for images, labels in batches:
        pred = segmenter.predict(images.to(device))
        acc.update(pred, labels.to(device))
        n += len(images)
    out = summarise(acc.matrix)
    out["n_images"] = n
    out["ignore_index"] = ignore_index
    return out


def dataset_batches(data, batch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """(images, labels) batches of a ``SemanticDataset`` in file order, unflipped."""
    for s in range(0, len(data), batch):
        items = [data[i] for i in range(s, min(s + batch, len(data)))]
        yield torch.stack([it["image"] for it in items]), torch.stack([it["label"] for it in items])


def evaluate_split(segmenter: DSegmenter, data, seg: SegmenterConfig) -> dict[str, Any]:
    """D-as-segmenter mIoU over a whole ``SemanticDataset`` split (thesis l.1251)."""
    ignore = 0 if segmenter.first == 1 else None
    return evaluate(segmenter, dataset_batches(data, seg.batch), ignore)
