"""Score a generated pool with SIFID and keep the best samples (OSMIS data selection, thesis l.1835).

    python -m gan_core.metrics.sifid_cli filter --samples DIR --real IMAGE [--real IMAGE ...] --out DIR
        [--layers 0,1,2,3] [--drop-fraction 0.15] [--weights PATH|none] [--seed 0] [--device auto]
        [--batch-size 8] [--real-mode first|all] [--method auto] [--min-side 0]

Input: ``DIR/samples.json`` plus ``DIR/images/NNN.png`` and ``DIR/masks/NNN.png``. If
samples.json holds a list of ``{"image": relpath, "mask": relpath}`` entries (top-level, or under
the key ``"samples"``) those are used, paths relative to DIR; otherwise every ``images/*.png``
(sorted) is paired with the mask of the same name in ``masks/``.

Output (written atomically):

* ``OUT/sifid.csv``: one row per sample: ``file`` (path relative to DIR), ``sifid_1`` ..
  ``sifid_4`` (empty for layers not computed), ``mean_rank``, ``kept`` (1/0);
* ``OUT/manifest.json``: ``{"kept": [{"image", "mask"}...], "rejected": [...], "weights_label",
  "drop_fraction", "layers", ...}``; the sample paths are relative to OUT (the folder of the
  manifest), which is what the downstream readers expect.

Only the layers in ``--layers`` are computed (the network stops at the deepest one).
``--weights none`` uses a seeded random-init network: its numbers are labelled
``random-init(seed=S)`` and are not SIFID values comparable to the thesis (tiny preset only).
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, MissingResourceError
from ..utils.atomic import write_json, write_text
from ..utils.cli import run_cli
from ..utils.images import read_image
from .filtering import n_dropped, rank_filter
from .inception import BLOCK_DIMS, SIFIDInception
from .sifid import sifid_per_sample
from ..utils.device import resolve_device
from ..utils.jsonfile import read_json

WEIGHTS_WHAT = "torchvision ImageNet Inception-v3 weights for SIFID (inception_v3_google-0cc3c7bd.pth)"


def parse_layers(text: str) -> tuple[int, ...]:
    try:
        layers = tuple(int(t) for t in text.split(",") if t.strip() != "")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--layers must be comma-separated integers, got {text!r}") from exc
    if not layers or len(set(layers)) != len(layers) or any(l not in range(len(BLOCK_DIMS)) for l in layers):
        raise argparse.ArgumentTypeError(f"--layers must be distinct values in 0..{len(BLOCK_DIMS) - 1}, got {text!r}")
    return layers


def list_samples(samples_dir: Path) -> list[tuple[Path, Path]]:
    """(image, mask) paths of a sample folder (see the module docstring)."""
    index = samples_dir / "samples.json"
    data = read_json(index, "sample index (samples.json in the sample folder)")
    entries = data.get("samples") if isinstance(data, dict) else data
    if isinstance(entries, list) and entries and all(isinstance(e, dict) and "image" in e for e in entries):
        pairs = []
        for i, e in enumerate(entries):
            if "mask" not in e:
                raise DataError(index, f"entry {i} has an 'image' but no 'mask'")
            pairs.append((samples_dir / e["image"], samples_dir / e["mask"]))
    else:
        images = sorted((samples_dir / "images").glob("*.png"))
        pairs = [(p, samples_dir / "masks" / p.name) for p in images]
    if not pairs:
        raise DataError(samples_dir, "no generated samples found (images/*.png)")
    for img, mask in pairs:
        if not img.is_file():
            raise DataError(img, "sample image listed in samples.json does not exist")
        if not mask.is_file():
            raise DataError(mask, f"mask of sample {img.name} does not exist")
    return pairs


def to_unit_range(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 (H, W, 3) images -> float (N, 3, H, W) in [-1, 1], as the official code (x/255, then 2x-1)."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return (x / 255.0) * 2.0 - 1.0


def load_samples(pairs: list[tuple[Path, Path]]) -> torch.Tensor:
    images = []
    for img_path, _ in pairs:
        img = read_image(img_path)
        if images and img.shape != images[0].shape:
            raise DataError(
                img_path,
                f"size {img.shape[1]}x{img.shape[0]} differs from {pairs[0][0].name} "
                f"({images[0].shape[1]}x{images[0].shape[0]}); all samples of a pool must share one size",
            )
        images.append(img)
    return to_unit_range(images)


def load_reals(paths: list[Path]) -> torch.Tensor:
    """Real images, each resized later to the sample size; they may differ in size among themselves."""
    imgs = [read_image(p) for p in paths]
    size = imgs[0].shape[:2]
    tensors = []
    for img in imgs:
        t = to_unit_range([img])
        if img.shape[:2] != size:  # bring all reals to the first one's size before stacking
            t = torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
        tensors.append(t)
    return torch.cat(tensors)


def _fetch_target_for(path: Path) -> str:
    """The manifest's fetch target whose file is ``path`` (default: the torchvision Inception entry)."""
    from ..resources import load_manifest

    for entry in load_manifest().values():
        if entry.filename and Path(path).name == entry.filename:
            return entry.fetch_target
    return "fetch_tv_inception_v3"


def build_network(weights: str, seed: int) -> SIFIDInception:
    if weights.lower() == "none":
        return SIFIDInception.from_weights(None, seed=seed)
    path = Path(weights)
    if not path.is_file():
        raise MissingResourceError(
            WEIGHTS_WHAT, path, fetch_target=_fetch_target_for(path),
            hint="Or pass --weights none for a seeded random-init network (tiny preset only; not thesis numbers).",
        )
    return SIFIDInception.from_weights(path)


def _rel(path: Path, start: Path) -> str:
    return os.path.relpath(path.resolve(), start.resolve())


def run_filter(args: argparse.Namespace) -> dict:
    samples_dir, out = Path(args.samples), Path(args.out)
    pairs = list_samples(samples_dir)
    net = build_network(args.weights, args.seed)  # fail early on missing weights
    fakes = load_samples(pairs)
    reals = load_reals([Path(p) for p in args.real])
    layers = tuple(sorted(args.layers))
    scores = sifid_per_sample(
        fakes, reals, net, layers=layers, real_mode=args.real_mode, batch_size=args.batch_size,
        device=resolve_device(args.device), method=args.method, min_side=args.min_side,
    )
    result = rank_filter(scores, drop_fraction=args.drop_fraction, layers=tuple(range(len(layers))))
    kept = set(result.kept_indices.tolist())

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", *[f"sifid_{k + 1}" for k in range(len(BLOCK_DIMS))], "mean_rank", "kept"])
    for i, (img, _) in enumerate(pairs):
        cells = [""] * len(BLOCK_DIMS)
        for j, l in enumerate(layers):
            cells[l] = f"{scores[i, j]:.10g}"
        writer.writerow([_rel(img, samples_dir), *cells, f"{result.mean_rank[i]:.6g}", int(i in kept)])
    write_text(out / "sifid.csv", buf.getvalue())

    def entries(indices: np.ndarray) -> list[dict]:
        return [{"image": _rel(pairs[i][0], out), "mask": _rel(pairs[i][1], out)} for i in indices.tolist()]

    manifest = {
        "kept": entries(result.kept_indices),
        "rejected": entries(result.rejected_indices),
        "weights_label": net.weights_label,
        "drop_fraction": args.drop_fraction,
        "layers": list(layers),
        "n_samples": len(pairs),
        "n_dropped": n_dropped(len(pairs), args.drop_fraction),
        "rounding": "n_dropped = floor(drop_fraction * n_samples + 0.5)",
        "ranking": "scipy.stats.rankdata(method='average') per layer, ascending SIFID; mean over layers; "
        "ties in mean rank: higher sample index dropped first",
        "real_mode": args.real_mode,
        "real": [_rel(Path(p), out) for p in args.real],
        "min_side": args.min_side,
        "method": args.method,
        "sifid_csv": "sifid.csv",
        "paths_relative_to": "this manifest's folder",
    }
    write_json(out / "manifest.json", manifest)
    return manifest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan_core.metrics.sifid_cli", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("filter", help="score a sample pool with SIFID and drop the worst-ranked samples")
    f.add_argument("--samples", required=True, help="folder with samples.json, images/, masks/")
    f.add_argument("--real", required=True, action="append", help="real (training) image; repeatable")
    f.add_argument("--out", required=True, help="output folder for sifid.csv and manifest.json")
    f.add_argument("--layers", type=parse_layers, default=(0, 1, 2, 3), help="SIFID layers, 0..3 = 64/192/768/2048-d")
    f.add_argument("--drop-fraction", type=float, default=0.15, help="fraction dropped (thesis l.1835: 0.15)")
    f.add_argument("--weights", required=True,
                   help="path of inception_v3_google-0cc3c7bd.pth (checksum verified by the fetch rule), "
                   "or 'none' for a seeded random-init network (tiny preset only)")
    f.add_argument("--seed", type=int, default=0, help="seed of the random-init network (--weights none)")
    f.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    f.add_argument("--batch-size", type=int, default=8)
    f.add_argument("--real-mode", choices=("first", "all"), default="first",
                   help="first: compare with the first real image (official); all: pool all real images")
    f.add_argument("--method", choices=("auto", "sqrtm", "eigh", "svd"), default="auto",
                   help="exact Fréchet trace route (auto = fastest)")
    f.add_argument("--min-side", type=int, default=0,
                   help="upscale images whose short side is smaller (0 = never; tiny preset only)")
    return parser


def _command(args: argparse.Namespace) -> int:
    if args.command == "filter":
        m = run_filter(args)
        print(f"kept {len(m['kept'])} of {m['n_samples']} samples ({m['weights_label']}) -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.set_defaults(func=_command)
    # error_code=None: a ReproError propagates (the tests rely on it), as it always did
    return run_cli(parser, argv, error_code=None)


if __name__ == "__main__":
    sys.exit(main())
