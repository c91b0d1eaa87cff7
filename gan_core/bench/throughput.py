"""Training throughput and peak memory of SIV-GAN / OSMIS / OASIS on synthetic data.

    python -m gan_core.bench.throughput --model {sivgan,osmis,oasis} --size HxW --iters N --warmup W \
        --batch B --device {auto,cpu,cuda} [--bf16] [--channels-last] [--mask-classes K] \
        [--ch C] [--threads T] [--params JSON] [--profile]

Prints one JSON line on stdout: iterations/s of ``OSMISTrainer.train_step`` (G step + D step +
EMA, i.e. one training iteration) over ``--iters`` timed iterations after ``--warmup`` untimed
ones, and the peak memory: ``torch.cuda.max_memory_allocated`` during the timed iterations on
CUDA, the process' maximum resident set size (``resource.getrusage``) on the CPU. ``--profile``
runs ``torch.profiler`` over one extra iteration and prints the top-10 operators by self time
(on stderr, so that stdout stays one JSON line); the trainer's ``record_function`` scopes
(``osmis.*``) separate augmentation, the G step, the D step, EMA and the logging sync.

``--model oasis``: ``OASISTrainer.train_step`` (G step, D step with LabelMix, EMA) on synthetic label maps of
``--mask-classes`` classes (+ dontcare) at ``--size`` (sides multiples of 64 for the default 6-block D;
the generated width is the crop size); ``--ch C`` sets ch_G = C and the D widths to the official ratios
(2C, 2C, 4C, 4C, 8C, 8C; last decoder block C). ``img_per_s`` = iterations/s x batch.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from ..nets.osmis import count_parameters
from ..nets.osmis_config import OSMISConfig
from ..train.osmis_trainer import OSMISTrainer
from ..utils.cli import run_cli
from ..utils.device import resolve_device

MODELS = ("sivgan", "osmis", "oasis")


@dataclass
class BenchConfig:
    model: str = "osmis"                 # "sivgan": no mask; "osmis": with a synthetic K-class mask
    size: tuple[int, int] = (96, 160)    # input (H, W); the trainer's auto architecture may round it
    iters: int = 10
    warmup: int = 2
    batch: int = 5                       # thesis l.1462 batch size
    device: str = "auto"
    bf16: bool = False
    channels_last: bool = False
    mask_classes: int = 2                # K incl. background (osmis only)
    ch: int | None = None                # ch_G = ch_D override (None: the default 32)
    threads: int | None = None           # torch intra-op threads on the CPU (None: torch's default)
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)  # further OSMISConfig overrides

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"--model must be one of {MODELS}, got {self.model!r}")
        if self.iters < 1 or self.warmup < 0 or self.batch < 1:
            raise ConfigError("--iters >= 1, --warmup >= 0 and --batch >= 1 are required")
        if self.model == "osmis" and self.mask_classes < 2:
            raise ConfigError("--mask-classes must be >= 2 (background + objects) for osmis")


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise ConfigError(f"--size must look like HxW (e.g. 96x160), got {text!r}") from exc
    return h, w


def synthetic_pair(height: int, width: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """A smooth random uint8 image and (classes > 0) a label map of vertical bands 0..classes-1."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    phase = rng.uniform(0, 2 * np.pi, 3)
    img = 127.5 + 100 * np.sin(6 * xx[..., None] + 4 * yy[..., None] + phase) \
        + rng.normal(0, 10, (height, width, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    if classes <= 0:
        return img, None
    mask = np.minimum((xx * classes).astype(np.int64), classes - 1)
    return img, mask


class SyntheticSemantic(torch.utils.data.Dataset):
    """In-memory stand-in of :class:`gan_core.data.semantic.SemanticDataset`: n smooth images with label maps
    of vertical bands 1..classes (0 = dontcare on the first row)."""

    def __init__(self, height: int, width: int, classes: int, n: int, seed: int = 0):
        from ..data.semantic import SemanticDataConfig

        self.cfg = SemanticDataConfig(semantic_nc=classes + 1, size=(height, width), flip=True)
        self.items = []
        for i in range(n):
            img, mask = synthetic_pair(height, width, classes, seed + i)
            lab = torch.from_numpy(mask + 1)
            lab[0] = 0
            self.items.append({"image": torch.from_numpy(img).permute(2, 0, 1).float() / 127.5 - 1.0,
                               "label": lab, "index": i})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key):
        index, flip = key if isinstance(key, tuple) else (key, False)
        item = dict(self.items[index])
        if flip:
            item["image"], item["label"] = item["image"].flip(-1), item["label"].flip(-1)
        return item


def build_oasis_trainer(cfg: BenchConfig, device: torch.device):
    from ..nets.oasis_config import OASISConfig
    from ..train.oasis_trainer import OASISRunConfig, OASISTrainer

    h, w = cfg.size
    overrides = {"semantic_nc": cfg.mask_classes + 1, "crop_size": w, "aspect_ratio": w / h, **cfg.params,
                 "batch_size": cfg.batch}
    if cfg.ch is not None:
        c = cfg.ch
        overrides.update(ch_G=c, d_channels=[2 * c, 2 * c, 4 * c, 4 * c, 8 * c, 8 * c], d_last_channels=c)
    model_cfg = OASISConfig.from_dict(overrides, where="--params")
    if tuple(model_cfg.output_size) != (h, w):
        raise ConfigError(f"--size {h}x{w}: OASIS generates {model_cfg.output_size[0]}x{model_cfg.output_size[1]}"
                          " (use sides that are multiples of 32; 64 for the default D)")
    data = SyntheticSemantic(h, w, cfg.mask_classes, n=2 * cfg.batch, seed=cfg.seed)
    run = OASISRunConfig(bf16=cfg.bf16, channels_last=cfg.channels_last, bn_refresh_batches=0)
    return OASISTrainer(model_cfg, data, run, seed=cfg.seed, device=device)


def build_trainer(cfg: BenchConfig, device: torch.device) -> OSMISTrainer:
    if cfg.model == "oasis":
        return build_oasis_trainer(cfg, device)
    overrides = dict(cfg.params)
    overrides["batch_size"] = cfg.batch
    if cfg.ch is not None:
        overrides.update(ch_G=cfg.ch, ch_D=cfg.ch)
    model_cfg = OSMISConfig.from_dict(overrides, where="--params")
    h, w = cfg.size
    img, mask = synthetic_pair(h, w, cfg.mask_classes if cfg.model == "osmis" else 0, cfg.seed)
    return OSMISTrainer(model_cfg, img, mask, device=device, amp_bf16=cfg.bf16, channels_last=cfg.channels_last,
                        source=f"<synthetic {h}x{w}>")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _max_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if platform.system() == "Darwin" else rss * 1024)  # Linux reports KiB


def profile_step(trainer: OSMISTrainer, iteration: int, top: int = 10) -> str:
    """torch.profiler table of one training iteration, top ``top`` operators by self time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    cuda = trainer.device.type == "cuda"
    if cuda:
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        trainer.train_step(iteration)
        _sync(trainer.device)
    events = prof.key_averages()
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    table = events.table(sort_by=key, row_limit=top)
    scopes = sorted((e for e in events if e.key.startswith(("osmis.", "oasis."))), key=lambda e: -e.cpu_time_total)
    lines = ["trainer scopes (host wall time incl. children):"]
    lines += [f"  {e.key:<16} {e.cpu_time_total / 1e3:10.2f} ms" for e in scopes]
    return table + "\n" + "\n".join(lines)


def run_benchmark(cfg: BenchConfig, profile: bool = False) -> dict[str, Any]:
    """Build a trainer on synthetic data, run warm-up and timed iterations; return the result row."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    trainer = build_trainer(cfg, device)
    for it in range(cfg.warmup):
        trainer.train_step(it)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for it in range(cfg.warmup, cfg.warmup + cfg.iters):
        trainer.train_step(it)
    _sync(device)
    elapsed = time.perf_counter() - t0
    if device.type == "cuda":
        peak, kind = int(torch.cuda.max_memory_allocated(device)), "cuda_max_memory_allocated"
    else:
        peak, kind = _max_rss_bytes(), "cpu_max_rss"
    if cfg.model == "oasis":
        shape = {"resolution": list(trainer.cfg.output_size), "mask_classes": trainer.cfg.semantic_nc,
                 "ch_G": trainer.cfg.ch_G, "ch_D": list(trainer.cfg.d_channels)}
    else:
        shape = {"resolution": list(trainer.arch.resolution), "mask_classes": trainer.cfg.num_mask_classes,
                 "ch_G": trainer.cfg.ch_G, "ch_D": trainer.cfg.ch_D}
    row = {
        "model": cfg.model, "input_size": list(cfg.size), "resolution": shape["resolution"],
        "batch": cfg.batch, "mask_classes": shape["mask_classes"], "ch_G": shape["ch_G"],
        "ch_D": shape["ch_D"], "params_G": count_parameters(trainer.G), "params_D": count_parameters(trainer.D),
        "device": str(device), "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                                               else platform.processor() or platform.machine()),
        "threads": torch.get_num_threads(), "bf16": cfg.bf16, "channels_last": cfg.channels_last,
        "warmup": cfg.warmup, "iters": cfg.iters, "seconds": round(elapsed, 4),
        "it_per_s": cfg.iters / elapsed, "s_per_it": elapsed / cfg.iters, "img_per_s": cfg.iters * cfg.batch / elapsed,
        "peak_memory_bytes": peak, "peak_memory_kind": kind, "torch": torch.__version__,
        "params": cfg.params,
    }
    if profile:
        row["profile_table"] = profile_step(trainer, cfg.warmup + cfg.iters)
    return row


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_core.bench.throughput", description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=MODELS, default="osmis")
    p.add_argument("--size", default="96x160", help="input HxW")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--channels-last", dest="channels_last", action="store_true")
    p.add_argument("--mask-classes", dest="mask_classes", type=int, default=2)
    p.add_argument("--ch", type=int, default=None, help="ch_G = ch_D (default 32)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--params", default="{}", help="JSON object of further OSMISConfig overrides")
    p.add_argument("--profile", action="store_true", help="profile one extra iteration (table on stderr)")
    return p


def _command(args: argparse.Namespace) -> int:
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:  # reported by run_cli as "error: --params is not valid JSON: ...", status 2
        raise ConfigError(f"--params is not valid JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise ConfigError("--params must be a JSON object")
    cfg = BenchConfig(model=args.model, size=parse_size(args.size), iters=args.iters, warmup=args.warmup,
                      batch=args.batch, device=args.device, bf16=args.bf16, channels_last=args.channels_last,
                      mask_classes=args.mask_classes, ch=args.ch, threads=args.threads, seed=args.seed,
                      params=params)
    row = run_benchmark(cfg, profile=args.profile)
    table = row.pop("profile_table", None)
    if table is not None:
        print(table, file=sys.stderr)
    print(json.dumps(row), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.set_defaults(func=_command)
    return run_cli(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
