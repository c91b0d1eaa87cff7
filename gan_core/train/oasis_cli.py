"""Command line for OASIS training, sampling and the real-image side of its evaluation.

    python -m gan_core.train.oasis_cli train --dataroot ROOT --out DIR [--dataset ade20k] [--params JSON]
        [--seed N] [--device auto|cpu|cuda] [--bf16] [--channels-last] [--num-workers W]
    torchrun --nproc_per_node G -m gan_core.train.oasis_cli train ...     (DDP, rank-0 checkpoints)
    python -m gan_core.train.oasis_cli sample --run DIR --dataroot ROOT --out DIR [--split validation] [--seed S]
    python -m gan_core.train.oasis_cli export --dataroot ROOT --params JSON --out DIR [--split validation]
    python -m gan_core.train.oasis_cli import --checkpoint best_EMA.pth --params JSON --out DIR

``ROOT`` is the dataset folder (ADE20K: ``ADEChallengeData2016``; the layouts: gan_core/data/semantic.py). ``--params`` is a JSON object of
OASISConfig overrides (gan_core/nets/oasis_config.py) plus the OASISRunConfig keys (iterations,
checkpoint_every, log_every, num_workers, bn_refresh_batches, noise_mode), plus the Chapter-4 ablation
switches of ``SemanticGANConfig`` (nets/semantic_gan_factory.py: generator, discriminator, d_label_encoding,
vgg_loss, feature_matching, mixing, noise_sampling, ...), ``spade`` (SPADEConfig overrides of the SPADE+ G;
dataset / semantic_nc / crop_size / aspect_ratio default to the OASIS ones) and ``gan_preset``: "oasis"
(default) or "spade_plus" (``SemanticGANConfig.spade_plus``, thesis l.1151; the other switches override it).
``--vgg-weights`` is the torchvision VGG19 file of the VGG loss, or "none" (seeded random VGG19, tiny preset
only). Training resumes from ``OUT/checkpoint.pt``. Outputs: ``OUT/config.json``, ``OUT/generator_ema.pt`` (EMA generator after the
BN-statistics refresh), ``OUT/done.json``.

``sample`` generates one image per label map of the split with the EMA generator (eval mode, image-level
3D noise seeded per label map), ``OUT/images/<label stem>.png`` + ``OUT/samples.json`` -- the FID / mIoU
protocol of the official code (one sample per val label map, reference notes §1.7). With ``--per-label K``
(K > 1) it writes K samples per label map, ``OUT/images/<label stem>/<k>.png`` (the diversity protocol of
Table 4.2: "for each label map in the test set, we generate 20 images", thesis l.1145); sample k of label map
i uses the noise key i + k * n_maps, so sample 0 is the single-sample image. ``export`` writes the
split's real images (``OUT/images``, the real side of FID, as the official val loader) and label maps
(``OUT/labels``, 16-bit PNG when an index exceeds 255) at the generated resolution, named by label stem.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data.semantic import SemanticDataConfig, SemanticDataset, epochs_to_iterations
from ..errors import ConfigError, DataError, MissingResourceError
from ..nets.oasis_config import OASISConfig
from ..nets.semantic_gan_factory import SemanticGANConfig, build_generator
from ..nets.spade_config import SPADEConfig
from ..provenance import provenance
from ..sample.generate import to_uint8
from ..utils.atomic import torch_save, write_json
from ..utils.cli import run_cli
from ..utils.dataclass_config import from_dict, to_dict
from ..utils.device import resolve_device
from ..utils.images import write_image
from .loop import LoopConfig, run_training, seed_everything
from .oasis_trainer import OASISRunConfig, OASISTrainer, generate_for_labels, init_distributed

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "generator_ema.pt"
RUN_KEYS = tuple(f.name for f in dataclasses.fields(OASISRunConfig))
GAN_KEYS = tuple(f.name for f in dataclasses.fields(SemanticGANConfig) if f.name not in ("oasis", "spade"))
GAN_PRESETS = ("oasis", "spade_plus")
SPADE_FROM_OASIS = ("dataset", "semantic_nc", "crop_size", "aspect_ratio")


def gan_config(params: dict[str, Any], where: str = "--params") -> SemanticGANConfig:
    """SemanticGANConfig from the non-run keys of ``--params`` (module doc)."""
    params = dict(params)
    preset = params.pop("gan_preset", "oasis")
    if preset not in GAN_PRESETS:
        raise ConfigError(f"{where}: gan_preset {preset!r} is not one of {list(GAN_PRESETS)}")
    spade = params.pop("spade", None) or {}
    if not isinstance(spade, dict):
        raise ConfigError(f"{where}: spade must be an object of SPADEConfig overrides")
    switches = {k: params.pop(k) for k in GAN_KEYS if k in params}
    oasis = OASISConfig.from_dict(params, where=where)
    spade = {**{k: getattr(oasis, k) for k in SPADE_FROM_OASIS}, **spade}
    spade_cfg = from_dict(SPADEConfig, spade, where=f"{where} spade")
    try:
        if preset == "spade_plus":
            return SemanticGANConfig.spade_plus(dataset=oasis.dataset, oasis=oasis, spade=spade_cfg, **switches)
        return SemanticGANConfig(oasis=oasis, spade=spade_cfg, **switches)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def parse_params(text: str, bf16: bool = False, channels_last: bool = False, num_workers: int | None = None
                 ) -> tuple[SemanticGANConfig, OASISRunConfig]:
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--params is not valid JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise ConfigError("--params must be a JSON object")
    run = {k: params[k] for k in RUN_KEYS if k in params}
    run["bf16"] = bool(run.get("bf16", False) or bf16)
    run["channels_last"] = bool(run.get("channels_last", False) or channels_last)
    if num_workers is not None:
        run["num_workers"] = num_workers
    model = {k: v for k, v in params.items() if k not in RUN_KEYS}
    return gan_config(model), from_dict(OASISRunConfig, run, where="--params")


def vgg_weights_arg(gan: SemanticGANConfig, text: str) -> tuple[str | None, str | None]:
    """(weights path or None = seeded random, label for config.json); None label when the VGG loss is off."""
    if not gan.vgg_loss:
        return None, None
    if text in ("", "none"):
        return None, "random (seeded VGG19; tiny preset only, not the thesis' ImageNet VGG19)"
    if not Path(text).is_file():
        raise MissingResourceError("VGG19 weights (torchvision vgg19-dcbb9e9d.pth)", text, hint="fetch_tv_vgg19")
    return text, text


def dataset_for(cfg: OASISConfig, root: str | Path, split: str, train: bool,
                run: OASISRunConfig | None = None) -> SemanticDataset:
    """The split at the model's resolution and label layout; ``run.data_layout`` / ``run.subset_list`` select
    another folder layout of the same labels (ADE20K-outdoor: an ADE20K subset)."""
    layout = (run.data_layout if run is not None and run.data_layout else None) or cfg.dataset
    subset = run.subset_list if run is not None else None
    return SemanticDataset(root, split, SemanticDataConfig(dataset=layout, semantic_nc=cfg.semantic_nc,
                                                           size=cfg.output_size, flip=train, subset_list=subset))


def cmd_import(args: argparse.Namespace) -> int:
    """A run folder (config.json, generator_ema.pt, done.json) from a released OASIS checkpoint, so that the
    sampling / FID / mIoU rules evaluate it like a trained run. The generator is built from --params (the
    dataset's OASIS settings) and the file is loaded strictly (key or shape mismatch -> DataError naming it)."""
    from ..nets.oasis_checkpoint import load_oasis_state

    gan, run = parse_params(args.params)
    gen = load_oasis_state(args.checkpoint, build_generator(gan, gan.oasis.semantic_nc))
    out = Path(args.out)
    resolved = {"oasis": gan.oasis.to_dict(), "gan": gan.to_dict(), "vgg_weights": None, "run": to_dict(run),
                "iterations": None, "seed": None, "released_checkpoint": str(args.checkpoint)}
    write_json(out / CONFIG_NAME, resolved)
    torch_save(gen.state_dict(), out / WEIGHTS_NAME)
    write_json(out / "done.json", {"released_checkpoint": str(args.checkpoint),
                                   "provenance": provenance(params=resolved, seed=0)})
    print(f"released OASIS generator {args.checkpoint} -> {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    gan, run = parse_params(args.params, args.bf16, args.channels_last, args.num_workers)
    cfg = gan.oasis
    vgg_path, vgg_label = vgg_weights_arg(gan, args.vgg_weights)
    info = init_distributed()
    device = resolve_device(args.device)
    if device.type == "cuda" and info.world_size > 1:
        device = torch.device("cuda", info.local_rank)
    data = dataset_for(cfg, args.dataroot, "training", train=True, run=run)
    out = Path(args.out)
    seed_everything(args.seed)  # before building the models: seeded initialisation (same on every rank)
    trainer = OASISTrainer(gan, data, run, seed=args.seed, device=device, dist_info=info, vgg_weights=vgg_path)
    iterations = run.iterations or epochs_to_iterations(cfg.num_epochs, len(data), cfg.batch_size)  # global batch
    loop = LoopConfig(iterations=iterations, checkpoint_every=run.checkpoint_every, log_every=run.log_every,
                      seed=args.seed, desc=f"oasis {out.name}", is_main=info.is_main)
    resolved = {"oasis": cfg.to_dict(), "gan": gan.to_dict(), "vgg_weights": vgg_label, "run": to_dict(run), "iterations": iterations, "seed": args.seed,
                "dataroot": str(args.dataroot), "n_train": len(data), "world_size": info.world_size}
    if info.is_main:
        write_json(out / CONFIG_NAME, resolved)
    run_training(trainer, out, loop, meta={"provenance": provenance(params=resolved, seed=args.seed),
                                           "device": str(device)})
    if info.is_main:
        torch_save(trainer.refreshed_ema().state_dict(), out / WEIGHTS_NAME)
    if info.world_size > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return 0


def load_run(run: str | Path, device: torch.device) -> tuple[torch.nn.Module, OASISConfig, OASISRunConfig]:
    run = Path(run)
    cfg_path, w_path = run / CONFIG_NAME, run / WEIGHTS_NAME
    for what, p in (("OASIS run configuration", cfg_path), ("OASIS EMA generator weights", w_path)):
        if not p.is_file():
            raise MissingResourceError(what, p, hint="Train the model first (oasis_cli train).")
    try:
        resolved = json.loads(cfg_path.read_text())
        cfg = OASISConfig.from_dict(resolved["oasis"], where=str(cfg_path))
        gan = (SemanticGANConfig.from_dict(resolved["gan"], where=str(cfg_path)) if "gan" in resolved
               else SemanticGANConfig(oasis=cfg))  # runs written before the ablation switches existed
        run_cfg = from_dict(OASISRunConfig, resolved["run"], where=str(cfg_path))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(cfg_path, f"not a valid OASIS run configuration ({exc})") from exc
    gen = build_generator(gan, cfg.semantic_nc)
    try:
        gen.load_state_dict(torch.load(w_path, map_location="cpu", weights_only=True))
    except RuntimeError as exc:
        raise DataError(w_path, f"does not match the run's OASIS generator ({exc})") from exc
    return gen.to(device).eval(), cfg, run_cfg


def cmd_sample(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    gen, cfg, run_cfg = load_run(args.run, device)
    data = dataset_for(cfg, args.dataroot, args.split, train=False, run=run_cfg)
    out = Path(args.out)
    if args.per_label < 1:
        raise ConfigError(f"--per-label must be >= 1, got {args.per_label}")
    names, rows, n = data.names(), [], len(data)
    for start in range(0, n, args.batch):
        idx = list(range(start, min(start + args.batch, n)))
        labels = torch.stack([data[i]["label"] for i in idx])
        for k in range(args.per_label):
            keys = [i + k * n for i in idx]
            images = to_uint8(generate_for_labels(gen, labels, keys, args.seed, run_cfg.noise_mode))
            for i, img in zip(idx, images):
                rel = f"images/{names[i]}.png" if args.per_label == 1 else f"images/{names[i]}/{k:03d}.png"
                write_image(out / rel, img)
                rows.append({"image": rel, "label": str(data.pairs[i][1]), "sample": k})
    write_json(out / "samples.json", {"n": len(rows), "per_label": args.per_label, "split": args.split,
                                      "seed": args.seed, "samples": rows,
                                      "run": str(args.run),
                                      "provenance": provenance(params={"run": str(args.run), "split": args.split},
                                                               seed=args.seed)})
    print(f"{len(rows)} samples -> {out}")
    return 0


def write_label_map(path: Path, label: np.ndarray) -> None:
    """A label map as an 8-bit grayscale PNG, or 16-bit when an index exceeds 255 (LVIS: 1204), atomically."""
    from PIL import Image

    from ..utils.atomic import atomic_path

    arr = np.asarray(label)
    img = Image.fromarray(arr.astype(np.uint8), mode="L") if arr.max(initial=0) < 256 else \
        Image.fromarray(arr.astype(np.uint16))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def cmd_export(args: argparse.Namespace) -> int:
    """The split's real images and label maps at the generated resolution, named by label stem: the real side
    of FID (as the official val loader) and the flat folders the segmenters read (thesis l.1123: evaluation at
    the generated resolution). Resolution and label layout come from --params (the dataset's OASIS params)."""
    gan, run = parse_params(args.params)
    cfg = gan.oasis
    data = dataset_for(cfg, args.dataroot, args.split, train=False, run=run)
    out = Path(args.out)
    for k, name in enumerate(data.names()):
        image, label = data.load(k)
        write_image(out / "images" / f"{name}.png", np.asarray(image))
        write_label_map(out / "labels" / f"{name}.png", label)
    write_json(out / "export.json", {"n": len(data), "split": args.split, "size": list(cfg.output_size),
                                     "dataset": cfg.dataset, "semantic_nc": cfg.semantic_nc,
                                     "provenance": provenance(params={"oasis": cfg.to_dict(), "split": args.split},
                                                              seed=0)})
    print(f"{len(data)} real images + label maps at {cfg.output_size} -> {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_core.train.oasis_cli", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train OASIS (resumable; DDP under torchrun)")
    t.add_argument("--dataroot", required=True, help="ADE20K-layout root (ADEChallengeData2016)")
    t.add_argument("--out", required=True)
    t.add_argument("--params", default="{}", help="JSON: OASISConfig overrides + " + ", ".join(RUN_KEYS))
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    t.add_argument("--bf16", action="store_true", help="bfloat16 autocast (default: fp32 as the thesis)")
    t.add_argument("--channels-last", dest="channels_last", action="store_true")
    t.add_argument("--num-workers", dest="num_workers", type=int, default=None, help="DataLoader workers")
    t.add_argument("--vgg-weights", dest="vgg_weights", default="none",
                   help="torchvision vgg19 weights of the VGG loss (manifest tv_vgg19), or 'none' = seeded random "
                        "VGG19 (tiny preset only); used only when the variant turns the VGG loss on")
    t.set_defaults(func=cmd_train)
    s = sub.add_parser("sample", help="one image per label map of a split, from the EMA generator")
    s.add_argument("--run", required=True)
    s.add_argument("--dataroot", required=True)
    s.add_argument("--split", default="validation")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch", type=int, default=16)
    s.add_argument("--per-label", dest="per_label", type=int, default=1,
                   help="samples per label map (K > 1: images/<stem>/<k>.png, the Table 4.2 diversity protocol)")
    s.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    s.set_defaults(func=cmd_sample)
    i = sub.add_parser("import", help="a run folder from a released OASIS checkpoint (best_EMA.pth)")
    i.add_argument("--checkpoint", required=True, help="released generator weights (plain state dict)")
    i.add_argument("--params", default="{}", help="JSON: the dataset's OASISConfig overrides")
    i.add_argument("--out", required=True)
    i.set_defaults(func=cmd_import)
    r = sub.add_parser("export", help="the split's real images + label maps at the generated resolution")
    r.add_argument("--dataroot", required=True)
    r.add_argument("--params", default="{}", help="JSON: the dataset's OASISConfig overrides (resolution, layout)")
    r.add_argument("--split", default="validation")
    r.add_argument("--out", required=True)
    r.set_defaults(func=cmd_export)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
