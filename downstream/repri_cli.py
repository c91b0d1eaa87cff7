"""Command line of the RePRI downstream system (COCO-20i few-shot segmentation, thesis Table 6.6).

    python -m downstream.repri_cli evaluate --coco-root DIR --list FILE --fold K --checkpoint PATH
        [--shots 1] [--runs 5] [--episodes 1000] [--support-pool JSON|none] [--synthetic DIR|none]
        --out JSON [--seed 2020] [--device auto] [--params JSON]
    python -m downstream.repri_cli init-tiny --out PATH [--seed 0]
    python -m downstream.repri_cli train-tiny --coco-root DIR --list TRAIN_LIST --fold K --out DIR
        [--params JSON] [--seed 0] [--device auto]

``evaluate`` writes ``{"value": mIoU (%, mean over runs), "per_class", "runs", ..., "provenance"}`` atomically.
``--list``: official list file (``val2014/X.jpg val/X.png`` per line, relative to --coco-root).
``--support-pool``: JSON ``{"<class id>": [image stems], ...}`` restricting the support images (thesis
l.1865-1869). ``--synthetic``: folder ``<class id>/<image stem>/manifest.json`` of synthetic pairs per support
image; up to 10 are appended (thesis l.1841). ``--params``: RePRIConfig overrides (JSON or .json file);
the flags override it. ``--checkpoint``: official ``best.pth`` of the fold (or a tiny one from ``init-tiny``:
a randomly initialised narrow PSPNet in the same format, for smoke tests only; or one from ``train-tiny``: the
narrow PSPNet trained briefly on the fold's base classes, resumable, written to ``OUT/best.pth``; tiny preset).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gan_core.errors import MissingResourceError
from gan_core.provenance import provenance
from gan_core.utils.atomic import torch_save, write_json
from gan_core.utils.dataclass_config import from_dict, to_dict

from .cli_common import parse_params, resolve_device, run_cli
from .repri.config import RePRIConfig

CHECKPOINT_RESOURCE = "repri_coco_checkpoints"


def missing_checkpoint(path: Path) -> MissingResourceError:
    """The error for an absent fold checkpoint, with the manual download instructions from the manifest."""
    from gan_core.resources import load_manifest

    entry = load_manifest()[CHECKPOINT_RESOURCE]
    return MissingResourceError("RePRI COCO-20i PSPNet checkpoint", path, entry.fetch_target,
                                f"{entry.how_to_get()} (the tiny preset uses a checkpoint from 'init-tiny').")


def _none(value: str | None) -> str | None:
    return None if value in (None, "", "none") else value


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .repri.episodes import SyntheticPools, fold_classes, index_dataset, read_list, read_support_pool
    from .repri.evaluate import evaluate
    from .repri.pspnet import load_pspnet

    params = parse_params(args.params)
    params.update({"shot": args.shots, "n_runs": args.runs, "test_num": args.episodes, "seed": args.seed})
    cfg = from_dict(RePRIConfig, params, where="--params")
    ckpt = Path(args.checkpoint)
    if not ckpt.is_file():
        raise missing_checkpoint(ckpt)
    device = resolve_device(args.device)
    model = load_pspnet(ckpt)
    index = index_dataset(read_list(args.list, args.coco_root), fold_classes(args.fold), cfg.min_pixels)
    pool_path, syn_dir = _none(args.support_pool), _none(args.synthetic)
    pool = read_support_pool(pool_path, index) if pool_path else None
    synthetic = SyntheticPools(Path(syn_dir), cfg.synthetic_foreground).get if syn_dir else None
    result = evaluate(model, index, cfg, device, pool, synthetic)
    result.update({"metric": "mIoU", "fold": args.fold, "checkpoint": str(ckpt),
                   "support_pool": pool_path, "synthetic": syn_dir,
                   "provenance": provenance(to_dict(cfg), seed=cfg.seed)})
    write_json(args.out, result)
    print(json.dumps({"value": result["value"], "fold": args.fold}))


def cmd_init_tiny(args: argparse.Namespace) -> None:
    import torch

    from .repri.pspnet import PSPNet, PSPNetArch

    torch.manual_seed(args.seed)
    net = PSPNet(PSPNetArch.tiny())
    state = {"module." + k: v for k, v in net.state_dict().items()}
    torch_save({"epoch": 0, "state_dict": state}, args.out)
    print(args.out)


def cmd_train_tiny(args: argparse.Namespace) -> None:
    from .repri.train_tiny import RePRITrainConfig, train_tiny

    cfg = from_dict(RePRITrainConfig, parse_params(args.params), where="--params")
    out = train_tiny(args.list, args.coco_root, args.fold, args.out, cfg, args.seed, resolve_device(args.device))
    print(out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m downstream.repri_cli", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("evaluate", help="few-shot evaluation on one COCO-20i fold")
    e.add_argument("--coco-root", required=True)
    e.add_argument("--list", required=True)
    e.add_argument("--fold", type=int, required=True)
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--shots", type=int, default=1)
    e.add_argument("--runs", type=int, default=5)
    e.add_argument("--episodes", type=int, default=1000)
    e.add_argument("--support-pool", default="none")
    e.add_argument("--synthetic", default="none")
    e.add_argument("--out", required=True)
    e.add_argument("--seed", type=int, default=2020)
    e.add_argument("--device", default="auto")
    e.add_argument("--params", default=None)
    e.set_defaults(func=cmd_evaluate)
    t = sub.add_parser("init-tiny", help="write a randomly initialised tiny PSPNet checkpoint (smoke tests)")
    t.add_argument("--out", required=True)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_init_tiny)
    tt = sub.add_parser("train-tiny", help="train the narrow PSPNet on the base classes of a fold (tiny preset)")
    tt.add_argument("--coco-root", required=True)
    tt.add_argument("--list", required=True, help="train list (lines 'train2014/X.jpg train/X.png')")
    tt.add_argument("--fold", type=int, required=True)
    tt.add_argument("--out", required=True, help="run folder (checkpoint.pt for resuming, best.pth)")
    tt.add_argument("--params", default=None, help="RePRITrainConfig overrides (JSON)")
    tt.add_argument("--seed", type=int, default=0)
    tt.add_argument("--device", default="auto")
    tt.set_defaults(func=cmd_train_tiny)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
