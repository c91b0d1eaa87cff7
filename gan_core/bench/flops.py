"""FLOPs of one unit of work of every GPU-heavy job, counted with ``torch.utils.flop_counter``.

    python -m gan_core.bench.flops [--out results/compute/flops.json] [--only NAME ...] [--refresh]

A "unit" is what the compute plan (``gan_core.report.compute_plan``, ``workflow/compute_costs.yaml``)
multiplies by the number of units of a job:

* ``osmis_384x640`` / ``osmis_256x256`` / ``sivgan_256x256``: one training iteration of
  ``OSMISTrainer.train_step`` (G step + D step on the real and a fresh fake batch, batch 5, thesis widths
  ch_G = ch_D = 32), built by :func:`gan_core.bench.throughput.build_trainer` (the throughput benchmark's
  trainer on synthetic data, so both benchmarks measure the same step);
* ``osmis_384x640_sample`` / ``sivgan_256x256_sample``: one sample of the EMA generator (``OSMISTrainer.sample``);
* ``osvos_pass_b1`` / ``osvos_pass_b2``: one fine-tuning pass of ``downstream.osvos.finetune.FinetuneTrainer``
  at 480x854 (batch 1 = frame 0; batch 2 = frame 0 + one synthetic pair, thesis l.1837), VGG-16 width 1.0;
  ``osvos_predict_frame``: one forward pass of a frame (prediction);
* ``stm_*``: the parts of one STM frame at 480x854 (padded to 480x864), ResNet-50 encoders as official:
  ``stm_memorize_object`` (memory encoder, per object), ``stm_segment_base`` (query encoder, per frame),
  ``stm_decode_object`` (decoder, per object), ``stm_read_object_memframe`` (attention read, per object and
  memory frame) -- solved from four counts of ``STM.memorize`` / ``STM.segment``;
* ``repri_image``: ``PSPNet.extract_features`` of one 417x417 image (full RePRI COCO network);
* ``mask_alignment_384x640``: one whole ``synthesis_mask_alignment`` job (UNet, ResNet-18 encoder: 500
  training steps of ``MaskAlignmentTrainer`` at batch 5 + 101 evaluation batches, 384x640);
* ``oasis_image_256``: one training iteration of ``OASISTrainer.train_step`` at batch 1 on ADE20K
  (256x256, 151 label channels) = the work per image of a batch (convolutions are linear in the batch).

What is counted: matrix multiplications and convolutions, forward and backward (the operators
``FlopCounterMode`` knows: mm, bmm, addmm, convolution and their backward, attention). Element-wise
operations, normalisation, pooling, interpolation, grid sampling and optimiser updates are not counted:
on a GPU they cost memory bandwidth, which the compute plan's *sustained* throughput absorbs.

Where counting at full size is too slow on a CPU, ``--scale S`` counts the OSVOS passes (a pure
convolutional network) at (H/S, W/S) and multiplies by the pixel ratio (its FLOPs are proportional to the
pixels: every layer is a convolution over the whole image; the row then records ``counted_hw`` and
``pixel_ratio``; tests/test_compute_plan.py checks the proportionality). ``_stm`` applies the same rule to
STM (attention read: squared ratio) but is not scaled by default because it counts in seconds.
OSMIS, OASIS and the mask-alignment UNet are always counted at full size (their architecture depends on the
resolution, or they are cheap enough). The pure-module counts (STM, RePRI, OSVOS prediction) run on fake
tensors (``FakeTensorMode``: shapes only, no arithmetic), which ``FlopCounterMode`` supports, so they are
always at full size and take seconds. The default (``--scale 1``) counts everything at full size; the cached
``results/compute/flops.json`` of this repository's README numbers was made that way (~10 min, 2 cores).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..errors import ConfigError
from ..utils.atomic import write_json
from ..utils.cli import run_cli
from ..utils.jsonfile import read_json

DEFAULT_CACHE = Path("results/compute/flops.json")
DAVIS_HW = (480, 854)      # DAVIS 480p frames (OSVOS / STM work at the native size)
REPRI_SIZE = 417           # RePRIConfig.image_size (official coco.yaml)
CACHE_VERSION = 1


def shape_only():
    """A mode in which tensors carry shapes only (``FakeTensorMode``: CPU device, no storage, no arithmetic);
    modules and inputs created inside it are counted in seconds. (The ``meta`` device would do too, but
    ``torch.autocast`` rejects it, and STM's memory read opens an autocast region.)"""
    from torch._subclasses.fake_tensor import FakeTensorMode

    return FakeTensorMode(allow_non_fake_inputs=False)


def count_flops(fn: Callable[[], Any]) -> int:
    """Total FLOPs (multiply-add = 2 FLOPs) that ``fn()`` executes, counted by ``FlopCounterMode``."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# ------------------------------------------------------------------------------------- OSMIS / SIV-GAN
def osmis_iteration(size: tuple[int, int], model: str = "osmis", ch: int | None = None, batch: int = 5,
                    mask_classes: int = 2) -> dict[str, Any]:
    """FLOPs of one ``OSMISTrainer.train_step`` (the throughput benchmark's trainer) on the CPU."""
    from .throughput import BenchConfig, build_trainer

    cfg = BenchConfig(model=model, size=tuple(size), batch=batch, device="cpu", ch=ch, mask_classes=mask_classes)
    torch.manual_seed(0)
    trainer = build_trainer(cfg, torch.device("cpu"))
    flops = count_flops(lambda: trainer.train_step(0))
    return {"flops": flops, "resolution": list(trainer.arch.resolution), "batch": batch,
            "ch_G": trainer.cfg.ch_G, "ch_D": trainer.cfg.ch_D, "mask_classes": trainer.cfg.num_mask_classes,
            "unit": "training iteration (G step + D step, batch %d)" % batch}


def osmis_sample(size: tuple[int, int], model: str = "osmis", mask_classes: int = 2) -> dict[str, Any]:
    """FLOPs of one sample of the EMA generator (``OSMISTrainer.sample``, as ``sample_osmis`` draws them)."""
    from .throughput import BenchConfig, build_trainer

    cfg = BenchConfig(model=model, size=tuple(size), device="cpu", mask_classes=mask_classes)
    trainer = build_trainer(cfg, torch.device("cpu"))
    flops = count_flops(lambda: trainer.sample(1, seed=0, batch=1))
    return {"flops": flops, "resolution": list(trainer.arch.resolution), "unit": "generated sample"}


# ----------------------------------------------------------------------------------------------- OSVOS
def osvos_pass(hw: tuple[int, int] = DAVIS_HW, synthetic: bool = False, width: float = 1.0) -> dict[str, Any]:
    """FLOPs of one ``FinetuneTrainer.train_step`` (forward + backward) on the CPU."""
    from downstream.osvos.config import OSVOSConfig
    from downstream.osvos.finetune import FinetuneTrainer
    from downstream.osvos.net import OSVOSNet

    h, w = hw
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
    mask = torch.zeros(h, w, dtype=torch.uint8)
    mask[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 1
    cfg = OSVOSConfig(width=width, synthetic=synthetic, n_ave_grad=1)
    syn = (image[None].clone(), mask[None].clone()) if synthetic else (None, None)
    torch.manual_seed(0)
    trainer = FinetuneTrainer(OSVOSNet(width), cfg, image, mask, *syn, device="cpu", seed=0)
    flops = count_flops(lambda: trainer.train_step(0))
    return {"flops": flops, "hw": [h, w], "batch": 1 + cfg.n_synthetic, "unit": "fine-tuning pass"}


def osvos_predict(hw: tuple[int, int] = DAVIS_HW, width: float = 1.0) -> dict[str, Any]:
    """FLOPs of the forward pass of one frame (prediction), on fake tensors (shapes only)."""
    from downstream.osvos.net import OSVOSNet

    mode = shape_only()
    with mode:
        net = OSVOSNet(width)
        x = torch.empty(1, 3, *hw)
    with mode, torch.no_grad():
        flops = count_flops(lambda: net(x))
    return {"flops": flops, "hw": list(hw), "unit": "predicted frame"}


# ------------------------------------------------------------------------------------------------- STM
def stm_parts(hw: tuple[int, int] = DAVIS_HW, backbone: str = "resnet50") -> dict[str, Any]:
    """Per-part FLOPs of STM inference (no gradients), solved from four counts on fake tensors (shapes only).

    segment(N objects, T memory frames) = base + N * decode + N * T * read; memorize(N) = N * memorize_object.
    """
    from downstream.stm.inference import pad_amounts
    from downstream.stm.model import STM

    pad = pad_amounts(*hw)
    H, W = hw[0] + pad[2] + pad[3], hw[1] + pad[0] + pad[1]
    mode = shape_only()
    with mode:
        model = STM(backbone).eval()
        frame = torch.empty(1, 3, H, W)
    h, w = H // 16, W // 16
    ck, cv = model.key_dim, model.value_dim

    def seg(n: int, t: int) -> int:
        with mode:
            keys, values = torch.empty(n, ck, t, h, w), torch.empty(n, cv, t, h, w)
        with mode, torch.no_grad():
            return count_flops(lambda: model.segment(frame, keys, values))

    with mode, torch.no_grad():
        masks = torch.empty(1, H, W)
        mem1 = count_flops(lambda: model.memorize(frame, masks))
    s11, s21, s12 = seg(1, 1), seg(2, 1), seg(1, 2)
    read = s12 - s11
    decode = s21 - s11 - read
    base = s11 - decode - read
    return {"stm_memorize_object": mem1, "stm_segment_base": base, "stm_decode_object": decode,
            "stm_read_object_memframe": read, "padded_hw": [H, W], "backbone": backbone}


def stm_frame_flops(parts: dict[str, float], objects: float, memory_frames: float) -> float:
    """FLOPs of one processed STM frame: memorize the previous frame (per object) + segment with T frames."""
    return (parts["stm_segment_base"] + objects * (parts["stm_memorize_object"] + parts["stm_decode_object"])
            + objects * memory_frames * parts["stm_read_object_memframe"])


# ----------------------------------------------------------------------------------------------- RePRI
def repri_image(size: int = REPRI_SIZE) -> dict[str, Any]:
    """FLOPs of ``PSPNet.extract_features`` of one image (full official widths), on fake tensors (shapes only)."""
    from downstream.repri.pspnet import PSPNet

    mode = shape_only()
    with mode:
        net = PSPNet().eval()
        x = torch.empty(1, 3, size, size)
    with mode, torch.no_grad():
        flops = count_flops(lambda: net.extract_features(x))
    return {"flops": flops, "hw": [size, size], "unit": "image (feature extraction)"}


# ----------------------------------------------------------------------------------------------- OASIS
def oasis_image(dataset: str = "ade20k", batch: int = 1, variant: dict[str, Any] | None = None) -> dict[str, Any]:
    """FLOPs of one ``OASISTrainer.train_step`` at ``batch`` images, divided by ``batch`` (CPU).

    ``variant``: a config.yaml ``models.oasis.variants`` entry (``--params`` overrides: SemanticGANConfig
    switches, ``gan_preset``, ``spade``), built by the training CLI's own parser, e.g. ``{"gan_preset":
    "spade_plus"}`` for SPADE+ (its VGG loss runs on a seeded random VGG19 here: same FLOPs)."""
    from ..data.semantic import one_hot
    from ..train.oasis_cli import gan_config
    from ..train.oasis_trainer import OASISRunConfig, OASISTrainer

    gan = gan_config({**(variant or {}), "dataset": dataset, "batch_size": batch}, where="FLOP target")
    cfg = gan.oasis
    h, w = cfg.output_size
    nc = cfg.semantic_nc

    class _SyntheticTrainer(OASISTrainer):  # the trainer's own step on a synthetic batch (no dataset on disk)
        def _batch(self, iteration):
            g = torch.Generator().manual_seed(iteration)
            image = torch.rand(batch, 3, h, w, generator=g) * 2 - 1
            label = torch.randint(0, nc, (batch, h, w), generator=g)
            return image, label, one_hot(label, nc)

    class _Data(list):  # what the trainer reads of a SemanticDataset: len() and cfg
        cfg = SimpleNamespace(size=(h, w), semantic_nc=nc, flip=False)

    fake = _Data([None] * batch)
    torch.manual_seed(0)
    trainer = _SyntheticTrainer(gan, fake, OASISRunConfig(), seed=0, device="cpu")
    flops = count_flops(lambda: trainer.train_step(0))
    return {"flops": flops / batch, "hw": [h, w], "semantic_nc": nc, "batch_counted": batch,
            "variant": variant or {}, "generator": gan.generator, "discriminator": gan.discriminator,
            "vgg_loss": gan.vgg_loss, "mixing": gan.mixing,
            "unit": "training image (G step + D step, incl. the variant's mixing / VGG terms)"}


# ------------------------------------------------------------------------------------ mask alignment
def mask_alignment_job(hw: tuple[int, int] = (384, 640), classes: int = 2) -> dict[str, Any]:
    """FLOPs of one UNet mask-alignment job (``synthesis_mask_alignment``): ``iterations`` steps of
    ``MaskAlignmentTrainer.train_step`` + ``eval_batches`` forward passes of a batch (MaskAlignmentConfig)."""
    from ..metrics.mask_alignment import MaskAlignmentConfig, MaskAlignmentTrainer, PaddedUnet

    cfg = MaskAlignmentConfig()
    torch.manual_seed(0)
    model = PaddedUnet(classes)
    n = cfg.batch_size
    images = torch.rand(n, 3, *hw) * 2 - 1
    labels = torch.randint(0, classes, (n, *hw))
    trainer = MaskAlignmentTrainer(model, images, labels, cfg, seed=0)
    step = count_flops(lambda: trainer.train_step(0))
    model.eval()
    with torch.no_grad():
        forward = count_flops(lambda: model(images))
    return {"flops": cfg.iterations * step + cfg.eval_batches * forward, "step_flops": step,
            "eval_batch_flops": forward, "iterations": cfg.iterations, "eval_batches": cfg.eval_batches,
            "hw": list(hw), "unit": "mask-alignment job (UNet training + evaluation)"}


# ------------------------------------------------------------------------------------------ the catalogue
@dataclass
class Target:
    name: str
    fn: Callable[[float], dict[str, Any]]   # argument: the --scale divisor (1 = full size)
    scalable: bool = False                   # convolution-only: may be counted at 1/scale and scaled up
    description: str = ""


def _scaled_hw(hw: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(32, round(hw[0] / scale)), max(32, round(hw[1] / scale))


def _with_ratio(row: dict[str, Any], full: tuple[int, int], counted: tuple[int, int], keys=("flops",),
                quadratic_keys=()) -> dict[str, Any]:
    ratio = (full[0] * full[1]) / (counted[0] * counted[1])
    if ratio != 1.0:
        for k in keys:
            row[k] = row[k] * ratio
        for k in quadratic_keys:
            row[k] = row[k] * ratio ** 2
        row["counted_hw"], row["pixel_ratio"] = list(counted), ratio
        row["note"] = "counted at counted_hw and scaled by the pixel ratio (convolutional network)"
    return row


def _stm(scale: float) -> dict[str, Any]:
    hw = _scaled_hw(DAVIS_HW, scale)
    row = stm_parts(hw)
    parts = ("stm_memorize_object", "stm_segment_base", "stm_decode_object")
    return _with_ratio(row, DAVIS_HW, hw, keys=parts, quadratic_keys=("stm_read_object_memframe",))


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("osmis_384x640", lambda s: osmis_iteration((384, 640), "osmis"), description="OSMIS, DAVIS 640x384"),
    Target("osmis_384x640_sample", lambda s: osmis_sample((384, 640), "osmis"), description="OSMIS sample, 640x384"),
    Target("osmis_256x256", lambda s: osmis_iteration((256, 256), "osmis"), description="OSMIS, 256x256"),
    Target("sivgan_256x256", lambda s: osmis_iteration((256, 256), "sivgan"), description="SIV-GAN, 256x256"),
    Target("sivgan_256x256_sample", lambda s: osmis_sample((256, 256), "sivgan"), description="SIV-GAN sample, 256x256"),
    Target("osvos_pass_b1", lambda s: _with_ratio(osvos_pass(_scaled_hw(DAVIS_HW, s)), DAVIS_HW,
                                                  _scaled_hw(DAVIS_HW, s)), True, "OSVOS pass, frame 0"),
    Target("osvos_pass_b2", lambda s: _with_ratio(osvos_pass(_scaled_hw(DAVIS_HW, s), synthetic=True), DAVIS_HW,
                                                  _scaled_hw(DAVIS_HW, s)), True, "OSVOS pass, frame 0 + 1 synthetic"),
    Target("osvos_predict_frame", lambda s: osvos_predict(), False, "OSVOS forward of one frame"),
    Target("stm_parts", _stm, False, "STM inference parts"),
    Target("repri_image", lambda s: repri_image(), False, "PSPNet-50 features of one image"),
    Target("mask_alignment_384x640", lambda s: mask_alignment_job(), description="UNet mask alignment job"),
    Target("oasis_image_256", lambda s: oasis_image("ade20k"), description="OASIS ADE20K, one image"),
    # Chapter-4 baselines / ablations with another G or D (models.oasis.variants): counted with the same trainer
    Target("spade_plus_image_256", lambda s: oasis_image("ade20k", variant={"gan_preset": "spade_plus"}),
           description="SPADE+ (SPADE G, 2-scale PatchGAN, VGG loss) ADE20K, one image"),
    Target("oasis_g_patchgan_image_256", lambda s: oasis_image("ade20k", variant={
        "no_3dnoise": True, "mixing": "none", "discriminator": "ms_patchgan"}),
        description="OASIS G + 2-scale PatchGAN D (Table 4.9) ADE20K, one image"),
)}


def load_cache(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        return {"version": CACHE_VERSION, "torch": torch.__version__, "entries": {}}
    data = read_json(path, what="FLOP cache")
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        raise ConfigError(f"{path}: not a FLOP cache (expected an object with 'entries'); delete it to recount")
    return data


def compute(names: Sequence[str] | None = None, cache: str | Path | None = DEFAULT_CACHE, refresh: bool = False,
            scale: float = 1.0, log=print) -> dict[str, Any]:
    """Count the FLOPs of ``names`` (default: all targets), reusing and updating the JSON ``cache``."""
    names = list(names or TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise ConfigError(f"unknown FLOP target(s) {unknown}; known: {sorted(TARGETS)}")
    data = load_cache(cache) if cache else {"version": CACHE_VERSION, "entries": {}}
    entries = data["entries"]
    for name in names:
        if name in entries and not refresh:
            continue
        t0 = time.perf_counter()
        row = TARGETS[name].fn(scale if TARGETS[name].scalable else 1.0)
        row["count_seconds"] = round(time.perf_counter() - t0, 2)
        row["description"] = TARGETS[name].description
        entries[name] = row
        if log:
            log(f"{name}: {_fmt(row)} ({row['count_seconds']} s)")
        if cache:
            data["torch"] = torch.__version__
            write_json(cache, data)  # atomic; written after every target so that an interrupted run keeps them
    return data


def _fmt(row: dict[str, Any]) -> str:
    if "flops" in row:
        return f"{row['flops'] / 1e9:.1f} GFLOP"
    return ", ".join(f"{k}={v / 1e9:.2f} GFLOP" for k, v in row.items() if k.startswith("stm_"))


def flat(data: dict[str, Any]) -> dict[str, float]:
    """{name: FLOPs} of a cache, with the STM parts as separate names."""
    out = {}
    for name, row in data["entries"].items():
        if "flops" in row:
            out[name] = float(row["flops"])
        else:
            out.update({k: float(v) for k, v in row.items() if k.startswith("stm_") and isinstance(v, (int, float))})
    return out


def _command(args: argparse.Namespace) -> int:
    data = compute(args.only, args.out, args.refresh, args.scale, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps({k: v for k, v in flat(data).items()}, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan_core.bench.flops", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(DEFAULT_CACHE), help="JSON cache (read, completed, written atomically)")
    p.add_argument("--only", nargs="*", default=None, help=f"targets: {', '.join(TARGETS)}")
    p.add_argument("--refresh", action="store_true", help="recount targets already in the cache")
    p.add_argument("--scale", type=float, default=1.0,
                   help="count convolution-only nets at 1/scale of the size and scale by the pixel ratio")
    p.set_defaults(func=_command)
    return run_cli(p, argv)


if __name__ == "__main__":
    sys.exit(main())
