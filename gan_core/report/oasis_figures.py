"""OASIS qualitative figures and the D-as-segmenter score (thesis Chapter 4, Figs. 4.7, 4.10-4.12, l.1251).

* :func:`noise_figure` (Fig. 4.10): per label map one row of global 3D-noise resamples and one row of local
  resamples inside one class region (outlined in red), "the noise is re-sampled globally (first row) or
  locally in the areas marked in red (second row)".
* :func:`interpolation_figure` (Fig. 4.11): per label map one row of global and one row of local (region only)
  linear latent interpolations.
* :func:`recreation_figure` (Fig. 4.12): real image | D segmentation (colourised) | recreations 1-3 generated
  from the D's label map with new noise ("no ground truth maps are required").
* :func:`d_miou` (l.1251): mIoU of the discriminator as a segmenter on a split.
* :func:`colour_texture_figure` (Fig. 4.7): bar charts of the per-class LAB-colour EMD and LBP chi-square
  distances of each run's generated images to the real images of the split (``metrics/colour_texture.py``).

Panels are laid out with :func:`gan_core.report.qualitative.render` (exact pixel sizes,
:func:`~gan_core.report.qualitative.mosaic_size`); label maps are colourised with the 256-colour palette of
``report/figures.py`` (our choice: the thesis figures use the ADE20K colours, a presentation detail).
Label maps, images and noise are the split's files in sorted order, as ``oasis_cli sample``: label map i of the
split is drawn with key i; the first ``n_maps`` maps are shown unless ``indices`` are given.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..errors import ConfigError  # noqa: E402
from ..metrics.colour_texture import ClassHistograms, ColourTextureConfig, compare  # noqa: E402
from ..metrics.d_segmenter import SegmenterConfig, evaluate_split, load_segmenter  # noqa: E402
from ..provenance import provenance  # noqa: E402
from ..sample import oasis_noise as on  # noqa: E402
from ..sample.generate import to_uint8  # noqa: E402
from ..train.oasis_cli import dataset_for, load_run  # noqa: E402
from ..train.oasis_trainer import generate_for_labels  # noqa: E402
from ..utils.atomic import atomic_path, write_json  # noqa: E402
from ..utils.dataclass_config import to_dict  # noqa: E402
from .figures import PALETTE, boundaries  # noqa: E402
from .qualitative import Panel, render  # noqa: E402

log = logging.getLogger("gan_core.report.oasis_figures")
RED = np.array([255, 0, 0], dtype=np.uint8)


@dataclass
class FigureConfig:
    """What a figure shows (Figs. 4.10-4.12); numbers of panels are our choice (the thesis shows 2 maps)."""

    n_maps: int = 2                      # label maps (rows pairs) of Figs. 4.10 / 4.11
    indices: list[int] | None = None     # explicit split indices instead of the first n_maps
    region_class: str | int = "auto"     # class edited locally ("auto": largest non-dontcare class)
    n_recreations: int = 3               # Fig. 4.12 "Recreations 1-3"
    scale: int = 1                       # nearest upsampling of each panel
    noise: on.NoiseEditConfig = field(default_factory=on.NoiseEditConfig)

    def __post_init__(self) -> None:
        if self.n_maps < 1 or self.n_recreations < 1 or self.scale < 1:
            raise ConfigError("n_maps, n_recreations and scale must be >= 1")


# ------------------------------------------------------------------------------------ helpers
def colourise(label: np.ndarray) -> np.ndarray:
    """(H, W) labels -> (H, W, 3) uint8 colours (palette of report/figures.py)."""
    return PALETTE[np.clip(np.asarray(label, dtype=np.int64), 0, 255)]


def outline(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``image`` with the border of the boolean ``region`` drawn in red (2 px, both sides of the edge)."""
    edge = boundaries(region.astype(np.int64))
    edge[1:, :] |= edge[:-1, :]
    edge[:, 1:] |= edge[:, :-1]
    out = image.copy()
    out[edge] = RED
    return out


def sidecar_path(out: str | Path) -> Path:
    return Path(out).with_suffix(".json")


def _sidecar(out: str | Path, kind: str, params: dict[str, Any], seed: int | None, **extra: Any) -> None:
    write_json(sidecar_path(out), {"figure": kind, "png": str(out), **extra, "params": params,
                                   "provenance": provenance(params=params, seed=seed)})


def _pick_indices(n_data: int, fig: FigureConfig) -> list[int]:
    idx = list(fig.indices) if fig.indices else list(range(min(fig.n_maps, n_data)))
    bad = [i for i in idx if not 0 <= i < n_data]
    if bad or not idx:
        raise ConfigError(f"label-map indices {bad or idx} outside the split's 0..{n_data - 1}")
    return idx


def _open_run(run: str | Path, dataroot: str | Path, split: str, device: str):
    """(EMA generator, OASISConfig, the split at the run's resolution and layout)."""
    gen, cfg, run_cfg = load_run(run, torch.device(device))
    return gen, cfg, dataset_for(cfg, dataroot, split, train=False, run=run_cfg)


def _region_maps(gen, cfg, data, fig: FigureConfig):
    """(index, label, one-hot label, region class, region mask) of every selected label map."""
    for key in _pick_indices(len(data), fig):
        label = data[key]["label"]
        c, region = _region(label, fig, cfg.contain_dontcare_label, data.names()[key])
        yield key, label, on.label_one_hot(gen, label), c, region


def _region(label: torch.Tensor, fig: FigureConfig, contain_dontcare: bool, where: str) -> tuple[int, torch.Tensor]:
    try:
        c = on.pick_region(label, fig.region_class, (0,) if contain_dontcare else ())
    except ValueError as exc:
        raise ConfigError(f"{where}: --region-class {fig.region_class}: {exc}") from exc
    return c, (label == c)


# ------------------------------------------------------------------------------------ Fig. 4.10
def noise_figure(run: str | Path, dataroot: str | Path, out: str | Path, split: str = "validation",
                 fig: FigureConfig | None = None, device: str = "cpu") -> tuple[int, int]:
    """Fig. 4.10 (module doc). Columns: label map | n_samples images. Row 2k: global resamples of map k;
    row 2k+1: local resamples (region outlined in red) of the first global sample's noise."""
    fig = fig or FigureConfig()
    gen, cfg, data = _open_run(run, dataroot, split, device)
    nz, rows, regions = fig.noise, [], []
    for key, label, oh, c, region in _region_maps(gen, cfg, data, fig):
        z_glob = on.global_resamples(gen, oh, nz.n_samples, nz.seed, key)
        z_loc = on.local_resamples(z_glob[:1], region, nz.n_samples, nz.seed, key, nz.local_mode)
        img_g, img_l = to_uint8(on.decode(gen, oh, z_glob)), to_uint8(on.decode(gen, oh, z_loc))
        reg = region.numpy()
        lab = colourise(label.numpy())
        top = not rows  # column labels on the first row only (they are drawn in the padding above a panel)
        rows.append([Panel(lab, "label map" if top else "")]
                    + [Panel(im, f"sample {i + 1}" if top else "") for i, im in enumerate(img_g)])
        rows.append([Panel(outline(lab, reg))] + [Panel(outline(im, reg)) for im in img_l])
        regions.append({"index": key, "name": data.names()[key], "region_class": c,
                        "region_pixels": int(reg.sum())})
    hw = tuple(cfg.output_size)
    classes = ", ".join(str(r["region_class"]) for r in regions)
    size = render(rows, hw, out, f"OASIS {Path(run).name}: 3D noise resampled globally (odd rows) / locally in "
                                 f"red (even rows; classes {classes})", fig.scale)
    _sidecar(out, "fig_4_10_noise_resampling", {"run": str(run), "split": split, "n_samples": nz.n_samples,
                                                "local_mode": nz.local_mode, "region_class": str(fig.region_class),
                                                "scale": fig.scale}, nz.seed, maps=regions, size_hw=list(size))
    return size


# ------------------------------------------------------------------------------------ Fig. 4.11
def interpolation_figure(run: str | Path, dataroot: str | Path, out: str | Path, split: str = "validation",
                         fig: FigureConfig | None = None, device: str = "cpu") -> tuple[int, int]:
    """Fig. 4.11 (module doc). Columns: label map | ``steps`` images from t = 0 to 1. Row 2k: global linear
    interpolation between two image-level noises of map k; row 2k+1: the same inside the region only."""
    fig = fig or FigureConfig()
    gen, cfg, data = _open_run(run, dataroot, split, device)
    nz, rows, regions = fig.noise, [], []
    for key, label, oh, c, region in _region_maps(gen, cfg, data, fig):
        z_a, z_b = on.global_resamples(gen, oh, 2, nz.seed, key).split(1)
        img_g = to_uint8(on.decode(gen, oh, on.interpolate_global(z_a, z_b, nz.steps)))
        img_l = to_uint8(on.decode(gen, oh, on.interpolate_local(z_a, z_b, region, nz.steps)))
        reg, lab = region.numpy(), colourise(label.numpy())
        ts = [f"t={t / (nz.steps - 1):.2f}" for t in range(nz.steps)]
        top = not rows
        rows.append([Panel(lab, "label map" if top else "")] + [Panel(im, t if top else "") for im, t in zip(img_g, ts)])
        rows.append([Panel(outline(lab, reg))] + [Panel(outline(im, reg)) for im in img_l])
        regions.append({"index": key, "name": data.names()[key], "region_class": c})
    classes = ", ".join(str(r["region_class"]) for r in regions)
    size = render(rows, tuple(cfg.output_size), out, f"OASIS {Path(run).name}: linear interpolation, global (odd "
                  f"rows) / local in red (even rows; classes {classes})", fig.scale)
    _sidecar(out, "fig_4_11_interpolation", {"run": str(run), "split": split, "steps": nz.steps,
                                             "method": "linear", "region_class": str(fig.region_class),
                                             "scale": fig.scale}, nz.seed, maps=regions, size_hw=list(size))
    return size


# ------------------------------------------------------------------------------------ Fig. 4.12
def recreation_figure(run: str | Path, dataroot: str | Path, out: str | Path, split: str = "validation",
                      fig: FigureConfig | None = None, device: str = "cpu") -> tuple[int, int]:
    """Fig. 4.12: one row per image: real | D segmentation | recreations 1..n from the D's label map
    (image-level noise seeded with (seed, index, k), as ``generate_for_labels``)."""
    fig = fig or FigureConfig()
    dev = torch.device(device)
    gen, cfg, run_cfg = load_run(run, dev)
    seg, _, _, d_src = load_segmenter(run, dev)
    data = dataset_for(cfg, dataroot, split, train=False, run=run_cfg)
    rows, used = [], []
    n_rec, seed = fig.n_recreations, fig.noise.seed
    for key in _pick_indices(len(data), fig):
        item = data[key]
        pred = seg.predict(item["image"][None].to(dev)).cpu()
        keys = [key + k * len(data) for k in range(n_rec)]
        recs = to_uint8(generate_for_labels(gen, pred.expand(n_rec, -1, -1), keys, seed, run_cfg.noise_mode))
        real = to_uint8(item["image"][None])[0]
        top = not rows
        rows.append([Panel(real, "real image" if top else ""),
                     Panel(colourise(pred[0].numpy()), "D segmentation" if top else "")]
                    + [Panel(im, f"recreation {k + 1}" if top else "") for k, im in enumerate(recs)])
        used.append({"index": key, "name": data.names()[key]})
    size = render(rows, tuple(cfg.output_size), out,
                  f"OASIS {Path(run).name}: recreations from the discriminator's segmentation", fig.scale)
    _sidecar(out, "fig_4_12_recreation", {"run": str(run), "split": split, "n_recreations": n_rec,
                                          "scale": fig.scale, "d_weights": str(d_src)}, seed, images=used,
             size_hw=list(size))
    return size


# ------------------------------------------------------------------------------------ l.1251
def d_miou(run: str | Path, dataroot: str | Path, out: str | Path, split: str = "validation",
           seg_cfg: SegmenterConfig | None = None, device: str = "cpu") -> dict[str, Any]:
    """mIoU of the run's discriminator as a segmenter on ``split`` (thesis l.1251: 40.0 on ADE20K val);
    writes ``{"value", "metric", "details", "provenance"}`` (the seg_cli format) to ``out``."""
    seg_cfg = seg_cfg or SegmenterConfig()
    dev = torch.device(device)
    seg, gan, run_cfg, d_src = load_segmenter(run, dev, seg_cfg)
    data = dataset_for(gan.oasis, dataroot, split, train=False, run=run_cfg)
    details = evaluate_split(seg, data, seg_cfg)
    details.update(split=split, d_weights=str(d_src), exclude_dontcare=seg_cfg.exclude_dontcare,
                   protocol="argmax over the real-class channels of D's N+1 output (thesis l.1250)")
    params = {"run": str(run), "split": split, "exclude_dontcare": seg_cfg.exclude_dontcare}
    miou = details["miou"]
    result = {"value": None if miou != miou else float(miou), "metric": "oasis_d_segmenter_miou",
              "details": details, "provenance": provenance(params=params)}
    write_json(out, result)
    return result


# ------------------------------------------------------------------------------------ Fig. 4.7
def run_colour_texture(run: str | Path, dataroot: str | Path, split: str = "validation", seed: int = 0,
                       max_images: int | None = None, ct_cfg: ColourTextureConfig | None = None,
                       device: str = "cpu", batch: int = 8) -> dict[str, Any]:
    """Colour / texture distances of one run: its images of the split's label maps (one per map, the noise
    of ``oasis_cli sample --seed``) against the split's real images at the generated resolution, both masked by
    the label map (``colour_texture.compare``)."""
    ct_cfg = ct_cfg or ColourTextureConfig()
    gen, cfg, run_cfg = load_run(run, torch.device(device))
    if cfg.contain_dontcare_label and ct_cfg.ignore_index == 255:
        # our choice: label 0 = dontcare (ADE20K "unknown") is no semantic class; its pixels are skipped
        ct_cfg = dataclasses.replace(ct_cfg, ignore_index=0)
    data = dataset_for(cfg, dataroot, split, train=False, run=run_cfg)
    n = len(data) if max_images is None else min(len(data), int(max_images))
    real_h, fake_h = ClassHistograms(ct_cfg), ClassHistograms(ct_cfg)
    for s in range(0, n, batch):
        idx = list(range(s, min(s + batch, n)))
        pairs = [data.load(i) for i in idx]
        labels = torch.stack([torch.from_numpy(lab) for _, lab in pairs])
        fakes = to_uint8(generate_for_labels(gen, labels, idx, seed, run_cfg.noise_mode))
        for (img, lab), fake in zip(pairs, fakes):
            real_h.add(img, lab)
            fake_h.add(fake, lab)
    res = compare(real_h, fake_h)
    res["n_images"] = n
    res["ignore_index"] = ct_cfg.ignore_index
    return res


def colour_texture_figure(runs: Sequence[tuple[str, str | Path]], dataroot: str | Path | None, out: str | Path,
                          split: str = "validation", seed: int = 0, max_images: int | None = None,
                          ct_cfg: ColourTextureConfig | None = None, device: str = "cpu",
                          precomputed: Sequence[tuple[str, str | Path]] = (), preset: str | None = None
                          ) -> dict[str, Any]:
    """Fig. 4.7: two bar charts (colour EMD, texture chi-square; lower = closer to the real data), one bar per
    ``(label, run dir)`` (computed here) or ``(label, JSON)`` of ``seg_cli colour-texture`` (precomputed).
    ``preset`` "tiny" adds the TINY-PRESET warning to the title (the numbers are not thesis numbers)."""
    from ..utils.jsonfile import read_json

    ct_cfg = ct_cfg or ColourTextureConfig()
    if not runs and not precomputed:
        raise ConfigError("colour-texture needs at least one --run LABEL=RUN or --result LABEL=JSON")
    if runs and dataroot is None:
        raise ConfigError("colour-texture --run needs --dataroot")
    bars: list[dict[str, Any]] = []
    for label, run in runs:
        res = run_colour_texture(run, dataroot, split, seed, max_images, ct_cfg, device)
        bars.append({"label": label, "source": str(run), "colour_emd": res["colour_emd"],
                     "texture_chi2": res["texture_chi2"], "n_classes_used": res["n_classes_used"],
                     "n_images": res["n_images"]})
    for label, path in precomputed:
        res = read_json(path, "seg_cli colour-texture result")
        det = res.get("details", {}) if isinstance(res, dict) else {}
        bars.append({"label": label, "source": str(path), "colour_emd": det.get("colour_emd"),
                     "texture_chi2": det.get("texture_chi2"), "n_classes_used": det.get("n_classes_used"),
                     "n_images": det.get("n_images")})
    title = f"Histogram distances to real data ({split})"
    if preset == "tiny":
        title += "\nTINY PRESET: synthetic data, tiny networks (not thesis numbers)"
    _bar_chart(bars, out, title)
    params = {"runs": [[a, str(b)] for a, b in runs], "precomputed": [[a, str(b)] for a, b in precomputed],
              "split": split, "max_images": max_images, "config": to_dict(ct_cfg), "preset": preset}
    clean = [{k: (None if isinstance(v, float) and v != v else v) for k, v in b.items()} for b in bars]
    _sidecar(out, "fig_4_7_colour_texture", params, seed, bars=clean)
    return {"bars": clean}


def _bar_chart(bars: list[dict[str, Any]], out: str | Path, title: str) -> None:
    labels = [b["label"] for b in bars]
    fig, axes = plt.subplots(1, 2, figsize=(2.0 + 0.9 * len(bars), 2.8), dpi=100)
    for ax, key, name in ((axes[0], "colour_emd", "colour (LAB EMD)"), (axes[1], "texture_chi2", "texture (LBP chi2)")):
        vals = [b[key] if b[key] is not None and b[key] == b[key] else 0.0 for b in bars]
        rects = ax.bar(range(len(bars)), vals, color=plt.cm.tab10(np.arange(len(bars)) % 10))
        for r, b in zip(rects, bars):
            v = b[key]
            ax.annotate("n/a" if v is None or v != v else f"{v:.3g}", (r.get_x() + r.get_width() / 2, r.get_height()),
                        ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(bars)), labels, fontsize=7, rotation=20)
        ax.set_title(f"{name} ↓", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    with atomic_path(Path(out)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
