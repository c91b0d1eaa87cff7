"""One command line for every image-quality / diversity metric: ``python -m gan_core.metrics``.

Subcommands (all image folders hold PNG/JPG files, read as RGB uint8 and mapped to [-1, 1]):

``sifid``            mean and best SIFID per layer (thesis l.1472; torchvision Inception, ``tv_inception_v3``)
``fid``              FID, pytorch-fid conventions (thesis eq. 3.2, l.2023; ``fid_inception``); real side
                     = image folder (statistics cached with ``--cache-dir``) or a statistics ``.npz``
``lpips-diversity``  mean LPIPS over pairs of generated images (thesis l.1472); ``--groups``: per
                     label-map sub-folder, averaged (OASIS, thesis l.1163: 20 samples per label map)
``dist-to-train``    mean over fakes of the min LPIPS to the augmented training images (thesis l.1474)
``pixel-diversity``  SinGAN pixel diversity (thesis l.1472; variant recorded in the result)
``ms-ssim``          mean pairwise MS-SSIM per label-map group (thesis l.1163, l.2717); lower = more diverse
``intra-lpips``      CDC intra-LPIPS (thesis l.2023; LPIPS-VGG)
``weights``          state of every weights entry of the manifest: present / missing / corrupt / unverified

Every metric writes ``--out`` (JSON, atomically) with ``{"metric", "value", "weights_label",
"details", "config", "provenance"}``. Network weights come from the resource manifest
(``--weights manifest``, the default; a missing file raises an error naming ``fetch_<entry>``), an
explicit file (``--weights PATH``) or a seeded random network (``--weights none``: tiny preset
only, labelled ``random...`` -- NOT numbers comparable to the thesis). Nothing is downloaded.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..utils.atomic import write_json
from ..utils.cli import run_cli
from .image_io import iter_image_batches, list_groups, list_images, load_images
from ..utils.device import resolve_device


# ------------------------------------------------------------------------------ helpers
def _limit(files: list[Path], n: int) -> list[Path]:
    return files[:n] if n and n > 0 else files


def _write(args: argparse.Namespace, metric: str, value, weights_label, details: dict | None = None) -> dict:
    from ..provenance import provenance

    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
              if k not in ("func", "out", "command")}
    record = {
        "metric": metric,
        "value": value,
        "weights_label": weights_label,
        "details": details or {},
        "config": config,
        "provenance": provenance(params=config, seed=getattr(args, "seed", None), preset=args.preset),
    }
    write_json(args.out, record)
    print(f"{metric}: {value} ({weights_label}) -> {args.out}")
    return record


def _lpips_metric(args: argparse.Namespace, net: str):
    from .lpips_metrics import TRUNK_ENTRY, LPIPSConfig, LPIPSDistance
    from .weights import weights_from_option

    trunk = weights_from_option(args.weights, TRUNK_ENTRY[net], args.resources)
    cfg = LPIPSConfig(net=net, official_01_quirk=getattr(args, "official_01_quirk", False),
                      batch_size=args.batch_size, device=resolve_device(args.device))
    return LPIPSDistance.build(cfg, trunk, seed=args.seed)


def _train_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        files += list_images(p)
    return files


# ------------------------------------------------------------------------------ commands
def cmd_sifid(args: argparse.Namespace) -> dict:
    from .inception import BLOCK_DIMS, SIFIDInception
    from .sifid import mean_and_best, sifid_per_sample
    from .weights import weights_from_option

    path = weights_from_option(args.weights, "tv_inception_v3", args.resources)
    net = SIFIDInception.from_weights(path, seed=args.seed)
    files = _limit(list_images(args.fake), args.max_images)
    fakes = load_images(files)
    reals = load_images(_train_files(args.real), size=tuple(fakes.shape[-2:]))
    layers = tuple(sorted(args.layers))
    scores = sifid_per_sample(fakes, reals, net, layers=layers, real_mode=args.real_mode,
                              batch_size=args.batch_size, device=resolve_device(args.device), min_side=args.min_side)
    mean, best = mean_and_best(scores)
    value = {}
    for j, l in enumerate(layers):
        value[f"mean_sifid_{BLOCK_DIMS[l]}"] = float(mean[j])
        value[f"best_sifid_{BLOCK_DIMS[l]}"] = float(best[j])
    details = {"per_sample": {f.name: [float(v) for v in row] for f, row in zip(files, scores)},
               "layers_dims": [BLOCK_DIMS[l] for l in layers]}
    return _write(args, "sifid", value, net.weights_label, details)


def cmd_fid(args: argparse.Namespace) -> dict:
    from .fid import FID_ENTRY, FIDConfig, FIDInception, FIDStats, fid_between, statistics_of_files
    from .weights import weights_from_option

    net = FIDInception.from_weights(weights_from_option(args.weights, FID_ENTRY, args.resources), seed=args.seed)
    cfg = FIDConfig(batch_size=args.batch_size, method=args.method, device=resolve_device(args.device))
    fake_files = _limit(list_images(args.fake), args.max_images)
    real = Path(args.real)
    if real.suffix == ".npz":
        stats = FIDStats.load(real)
    else:
        stats = statistics_of_files(list_images(real), net, cfg, cache_dir=args.cache_dir)
    value = fid_between(iter_image_batches(fake_files, cfg.batch_size), stats, net, cfg)
    return _write(args, "fid", value, net.weights_label, {"n_fake": len(fake_files), "n_real": stats.n})


def cmd_lpips_diversity(args: argparse.Namespace) -> dict:
    from .diversity import mean_over_groups

    metric = _lpips_metric(args, args.net)
    groups = [load_images(_limit(g, args.max_images)) for g in list_groups(args.fake, args.groups)]
    value, per_group = mean_over_groups(groups, lambda g: metric.pairwise_mean(g, args.max_pairs, args.seed))
    return _write(args, "lpips_diversity", value, metric.weights_label,
                  {"per_group": per_group, "n_groups": len(groups)})


def cmd_dist_to_train(args: argparse.Namespace) -> dict:
    from .lpips_metrics import nearest_train_distances, training_augment

    metric = _lpips_metric(args, args.net)
    files = _limit(list_images(args.fake), args.max_images)
    fakes = load_images(files)
    train = load_images(_train_files(args.train), size=tuple(fakes.shape[-2:]))
    aug = None if args.no_augment else training_augment(args.aug_kind, args.aug_prob)
    d = nearest_train_distances(fakes, train, metric, aug, args.n_aug, args.seed)
    details = {"per_sample": {f.name: float(v) for f, v in zip(files, d)}, "n_train": int(train.shape[0]),
               "pool": "training images" + ("" if aug is None else f" + {args.n_aug} augmented copies each")}
    return _write(args, "dist_to_train", float(d.mean()), metric.weights_label, details)


def cmd_pixel_diversity(args: argparse.Namespace) -> dict:
    from .diversity import PixelDiversityConfig, pixel_diversity

    cfg = PixelDiversityConfig(mode=args.mode, ddof=args.ddof)
    fakes = load_images(_limit(list_images(args.fake), args.max_images))
    ref = load_images([args.reference])
    value = pixel_diversity(fakes, ref, cfg)
    return _write(args, "pixel_diversity", value, None, {"variant": cfg.variant(), "n_samples": int(fakes.shape[0])})


def cmd_ms_ssim(args: argparse.Namespace) -> dict:
    from .diversity import MSSSIMConfig, msssim_diversity

    cfg = MSSSIMConfig(min_side=args.min_side, batch_size=args.batch_size, device=resolve_device(args.device))
    groups = [load_images(_limit(g, args.max_images)) for g in list_groups(args.fake, args.groups)]
    value, per_group = msssim_diversity(groups, cfg)
    label = None if not args.min_side else f"upsampled-to-min-side-{args.min_side}"
    return _write(args, "ms_ssim", value, label, {"per_group": per_group, "n_groups": len(groups)})


def cmd_intra_lpips(args: argparse.Namespace) -> dict:
    from .intra_lpips import IntraLPIPSConfig, intra_lpips

    size = (args.resize, args.resize) if args.resize else None
    cfg = IntraLPIPSConfig(net=args.net, cluster_size=args.cluster_size, resize=args.resize or None, seed=args.seed)
    metric = _lpips_metric(args, args.net)
    gens = load_images(_limit(list_images(args.fake), args.max_images), size=size)
    train = load_images(_train_files(args.train), size=size or tuple(gens.shape[-2:]))
    res = intra_lpips(gens, train, metric, cfg)
    value = None if np.isnan(res.value) else res.value
    details = {"per_cluster": [None if np.isnan(v) else v for v in res.per_cluster], "counts": res.counts}
    return _write(args, "intra_lpips", value, metric.weights_label, details)


def cmd_weights(args: argparse.Namespace) -> dict:
    from ..data.fetch import status
    from ..resources import load_manifest

    manifest = load_manifest(args.manifest)
    rows = [r for r in status(manifest, args.resources, deep=args.deep) if manifest[r.name].kind == "weights"]
    for r in rows:
        print(f"{r.name:24s} {r.state:10s} {r.path}  (fetch: {manifest[r.name].fetch_target})")
    table = [{"name": r.name, "state": r.state, "path": str(r.path), "fetch_target": manifest[r.name].fetch_target}
             for r in rows]
    if args.out:
        write_json(args.out, {"weights": table})
    return {"weights": table}


# ------------------------------------------------------------------------------ parser
def _common(p: argparse.ArgumentParser, weights: bool = True, batch: int = 16) -> None:
    p.add_argument("--out", required=True, help="result JSON (written atomically)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seed of random networks / subsampling / augmentation")
    p.add_argument("--preset", default=None, help="preset name recorded in the provenance (e.g. tiny)")
    p.add_argument("--batch-size", type=int, default=batch, help="images per network forward")
    p.add_argument("--max-images", type=int, default=0, help="use only the first N fakes (sorted); 0 = all")
    if weights:
        p.add_argument("--weights", default="manifest",
                       help="manifest (default: the manifest entry under --resources) | PATH | none "
                            "(seeded random network: tiny preset only, not thesis numbers)")
        p.add_argument("--resources", default="resources", help="resources folder of the manifest")


def build_parser() -> argparse.ArgumentParser:
    from .sifid_cli import parse_layers

    parser = argparse.ArgumentParser(prog="python -m gan_core.metrics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sifid", help="mean/best SIFID per Inception layer (torchvision ImageNet Inception-v3)")
    _common(p, batch=8)
    p.add_argument("--fake", required=True, help="folder of generated images (one size)")
    p.add_argument("--real", required=True, action="append", help="real image or folder; repeatable")
    p.add_argument("--layers", type=parse_layers, default=(0, 1),
                   help="0..3 = 64/192/768/2048-d; default 0,1 = H*W/4 and H*W/16 (thesis l.1472)")
    p.add_argument("--real-mode", choices=("first", "all"), default="first",
                   help="first: every fake vs. the first real image (official); all: pool all reals")
    p.add_argument("--min-side", type=int, default=0, help="upscale small images (0 = never; tiny preset only)")
    p.set_defaults(func=cmd_sifid)

    p = sub.add_parser("fid", help="FID with pytorch-fid's network (299 bilinear, pool3 2048-d)")
    _common(p, batch=50)
    p.add_argument("--fake", required=True, help="folder of generated images")
    p.add_argument("--real", required=True, help="folder of real images, or a statistics .npz")
    p.add_argument("--cache-dir", default=None, help="cache real statistics here (key: hash of the file list)")
    p.add_argument("--method", choices=("auto", "sqrtm", "eigh", "svd"), default="auto",
                   help="exact Fréchet trace route (sqrtm = pytorch-fid's)")
    p.set_defaults(func=cmd_fid)

    p = sub.add_parser("lpips-diversity", help="mean LPIPS over pairs i<j of generated images")
    _common(p)
    p.add_argument("--fake", required=True, help="folder of generated images (sub-folders with --groups)")
    p.add_argument("--groups", action="store_true", help="one sub-folder per label map; average over them")
    p.add_argument("--max-pairs", type=int, default=None, help="seeded random subset of pairs (default all)")
    p.add_argument("--net", choices=("alex", "vgg"), default="alex")
    p.add_argument("--official-01-quirk", action="store_true",
                   help="feed [0,1] images with normalize=False like the official SIV-GAN evaluate.py")
    p.set_defaults(func=cmd_lpips_diversity)

    p = sub.add_parser("dist-to-train", help="mean min LPIPS from each fake to the augmented training images")
    _common(p)
    p.add_argument("--fake", required=True)
    p.add_argument("--train", required=True, action="append", help="training image or folder; repeatable")
    p.add_argument("--n-aug", type=int, default=20, help="augmented copies per training image (project choice)")
    p.add_argument("--aug-kind", choices=("siv", "ada"), default="siv", help="training DA set (thesis l.1460)")
    p.add_argument("--aug-prob", type=float, default=0.7, help="DA probability (thesis l.1460: 0.7)")
    p.add_argument("--no-augment", action="store_true", help="un-augmented training images (official code)")
    p.add_argument("--net", choices=("alex", "vgg"), default="alex")
    p.add_argument("--official-01-quirk", action="store_true", help="see lpips-diversity")
    p.set_defaults(func=cmd_dist_to_train)

    p = sub.add_parser("pixel-diversity", help="SinGAN pixel diversity (per-pixel std / reference std)")
    _common(p, weights=False)
    p.add_argument("--fake", required=True)
    p.add_argument("--reference", required=True, help="the training image")
    p.add_argument("--mode", choices=("gray", "rgb"), default="gray")
    p.add_argument("--ddof", type=int, choices=(0, 1), default=0)
    p.set_defaults(func=cmd_pixel_diversity)

    p = sub.add_parser("ms-ssim", help="mean pairwise MS-SSIM (per label-map group); lower = more diverse")
    _common(p, weights=False, batch=32)
    p.add_argument("--fake", required=True)
    p.add_argument("--groups", action="store_true", help="one sub-folder per label map; average over them")
    p.add_argument("--min-side", type=int, default=0, help="upsample images below 161 px (tiny preset only)")
    p.set_defaults(func=cmd_ms_ssim)

    p = sub.add_parser("intra-lpips", help="CDC intra-LPIPS (clusters around the nearest training image)")
    _common(p)
    p.add_argument("--fake", required=True)
    p.add_argument("--train", required=True, action="append", help="training image or folder; repeatable")
    p.add_argument("--cluster-size", type=int, default=50, help="members kept per cluster (CDC: 50)")
    p.add_argument("--resize", type=int, default=256, help="resize to NxN first (CDC: 256; 0 = keep)")
    p.add_argument("--net", choices=("alex", "vgg"), default="vgg")
    p.set_defaults(func=cmd_intra_lpips)

    p = sub.add_parser("weights", help="list the weights entries: present / missing / corrupt / unverified")
    p.add_argument("--resources", default="resources")
    p.add_argument("--manifest", default=None, help="manifest YAML (default: workflow/manifests/resources.yaml)")
    p.add_argument("--deep", action="store_true", help="re-hash files instead of trusting the markers")
    p.add_argument("--out", default=None, help="optional JSON output")
    p.set_defaults(func=cmd_weights)
    return parser


def main(argv: list[str] | None = None) -> int:
    # error_code=None: a ReproError propagates (batch_cli and the tests rely on it), as it always did
    return run_cli(build_parser(), argv, error_code=None)


if __name__ == "__main__":
    sys.exit(main())
