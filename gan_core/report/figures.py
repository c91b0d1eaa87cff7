"""Figures rendered from files already on disk (no training, no model code).

``filter_figure`` shows, for one or more training pairs, the training image with
its mask, then kept and rejected generated samples of the SIFID-ranked filter
(thesis Sec. 6.3.4). ``render_all`` re-renders every figure of a results folder.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..utils.atomic import atomic_path  # noqa: E402
from ..utils.cli import run_cli  # noqa: E402
from ..utils.images import davis_palette, read_image, read_mask  # noqa: E402

PALETTE = np.asarray(davis_palette(), dtype=np.uint8).reshape(256, 3)


def boundaries(mask: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour has another label (vectorised)."""
    edge = np.zeros(mask.shape, dtype=bool)
    edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    edge[:-1, :] |= mask[:-1, :] != mask[1:, :]
    return edge


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.3) -> np.ndarray:
    """Tint each object with its DAVIS colour and draw its outline (background untouched),
    so that the generated image stays visible under its mask."""
    out = image.astype(np.float32).copy()
    obj = (mask > 0) & (mask != 255)
    colours = PALETTE[np.clip(mask, 0, 255)].astype(np.float32)
    out[obj] = (1 - alpha) * out[obj] + alpha * colours[obj]
    edge = boundaries(np.where(obj, mask, 0))
    out[edge] = colours[edge]
    return out.clip(0, 255).astype(np.uint8)


def _entry_paths(entry, base: Path) -> tuple[Path, Path | None]:
    if isinstance(entry, str):
        return base / entry, None
    return base / entry["image"], (base / entry["mask"]) if entry.get("mask") else None


def filter_figure(pairs: Sequence[dict], out: str | Path, n_kept: int = 5, n_rejected: int = 3,
                  title: str = "") -> None:
    """One row per training pair: training image+mask | kept samples | rejected samples.

    ``pairs``: dicts with keys ``name``, ``image``, ``mask`` (training pair files) and
    ``manifest`` (the filter's manifest.json; sample paths are relative to its folder).
    """
    ncols = 1 + n_kept + n_rejected
    fig, axes = plt.subplots(len(pairs), ncols, figsize=(1.9 * ncols, 1.5 * len(pairs) + 0.6), squeeze=False)
    for r, pair in enumerate(pairs):
        manifest_path = Path(pair["manifest"])
        manifest = json.loads(manifest_path.read_text())
        base = manifest_path.parent
        panels = [(overlay(read_image(pair["image"]), read_mask(pair["mask"])), "training pair", "red")]
        for kind, n, colour in (("kept", n_kept, "green"), ("rejected", n_rejected, "black")):
            for entry in manifest.get(kind, [])[:n]:
                img_path, mask_path = _entry_paths(entry, base)
                img = read_image(img_path)
                if mask_path is not None and mask_path.exists():
                    img = overlay(img, read_mask(mask_path))
                panels.append((img, kind, colour))
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(panels):
                img, label, colour = panels[c]
                ax.imshow(img)
                ax.set_title(label if c == 0 or label != panels[c - 1][1] else "", fontsize=7, color=colour)
                for side in ax.spines.values():
                    side.set_edgecolor(colour)
        axes[r][0].text(-0.05, 0.5, pair.get("name", ""), transform=axes[r][0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".") or "png", dpi=110)
    plt.close(fig)


def render_all(spec_path: str | Path) -> list[Path]:
    """Render every figure listed in a JSON spec {"figures": [{"out":..., "pairs": [...], "title":...}]}.

    Pairs whose files are missing are skipped (the figure says how many), so plots can be
    regenerated from whatever results exist.
    """
    spec = json.loads(Path(spec_path).read_text())
    written = []
    for fig in spec["figures"]:
        pairs = [p for p in fig["pairs"] if all(Path(p[k]).exists() for k in ("image", "mask", "manifest"))]
        if not pairs:
            continue
        title = fig.get("title", "")
        missing = len(fig["pairs"]) - len(pairs)
        if missing:
            title += f" ({missing} pair(s) not computed yet)"
        filter_figure(pairs, fig["out"], title=title)
        written.append(Path(fig["out"]))
    return written


def _command(args: argparse.Namespace) -> int:
    spec = args.spec
    if spec.lstrip().startswith("{"):
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            fh.write(spec)
            spec = fh.name
    for path in render_all(spec):
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Render figures from existing result files.")
    ap.add_argument("spec", help="JSON figure spec (or a JSON string)")
    ap.set_defaults(func=_command)
    return run_cli(ap, argv)


if __name__ == "__main__":
    sys.exit(main())
