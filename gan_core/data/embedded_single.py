"""Tiny embedded stand-ins for SIV-GAN's Single Image / Single Video data (tiny preset, tests).

Rendered with the generator of the embedded DAVIS dataset (:mod:`gan_core.data.embedded_davis`:
CC0 scikit-image textures and the CC0 horse silhouette, pinned by sha256), so nothing is
downloaded and the same parameters give byte-identical files::

    ROOT/places/image-00.png ...          "Places" stand-ins (one rendered frame each)
    ROOT/videos/video-00/00000.png ...    short "videos" (Single Video; middle frame = Single Image)
    ROOT/embedded_single.json             parameters, source checksums and licences

Numbers computed on this data prove the wiring only; they are NOT thesis numbers.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..errors import ConfigError
from ..utils.atomic import replace_dir, atomic_path, write_text
from .embedded_davis import SOURCE_LICENCES, EmbeddedDavisConfig, SequenceSpec, load_sources, render_sequence

FORMAT_VERSION = 1
META = "embedded_single.json"
_VIDEO_INDEX0, _IMAGE_INDEX0 = 1000, 2000  # RNG stream offsets, disjoint from embedded DAVIS' sequences


@dataclass(frozen=True)
class EmbeddedSingleConfig:
    height: int = 64
    width: int = 128
    n_images: int = 2
    n_videos: int = 1
    n_frames: int = 8
    seed: int = 0

    def __post_init__(self):
        if self.height < 16 or self.width < 16:
            raise ConfigError(f"embedded single-image data: size {self.height}x{self.width} is below 16x16")
        if self.n_images < 0 or self.n_videos < 0 or self.n_images + self.n_videos < 1 or self.n_frames < 1:
            raise ConfigError("embedded single-image data: need n_images, n_videos >= 0 (not both 0), n_frames >= 1")


def image_names(cfg: EmbeddedSingleConfig) -> list[str]:
    return [f"image-{i:02d}" for i in range(cfg.n_images)]


def video_names(cfg: EmbeddedSingleConfig) -> list[str]:
    return [f"video-{i:02d}" for i in range(cfg.n_videos)]


def _frames(name: str, index: int, n_frames: int, cfg: EmbeddedSingleConfig, src) -> list:
    dcfg = EmbeddedDavisConfig(height=cfg.height, width=cfg.width, n_frames=n_frames, seed=cfg.seed,
                               n_train_sequences=0, n_val_sequences=1, n_multi_object=0)
    frames, _ = render_sequence(SequenceSpec(name, "val", 1, index), dcfg, src)
    return frames


def _png(path: Path, arr) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def write_dataset(root: str | Path, cfg: EmbeddedSingleConfig = EmbeddedSingleConfig()) -> Path:
    root = Path(root)
    src = load_sources()
    for i, name in enumerate(image_names(cfg)):
        _png(root / "places" / f"{name}.png", _frames(name, _IMAGE_INDEX0 + i, 1, cfg, src)[0])
    for i, name in enumerate(video_names(cfg)):
        for t, frame in enumerate(_frames(name, _VIDEO_INDEX0 + i, cfg.n_frames, cfg, src)):
            _png(root / "videos" / name / f"{t:05d}.png", frame)
    meta = {"generator": "gan_core.data.embedded_single", "format_version": FORMAT_VERSION,
            "config": dataclasses.asdict(cfg), "images": image_names(cfg), "videos": video_names(cfg),
            "sources_sha256": src.sha256, "licences": SOURCE_LICENCES,
            "note": "Synthetic stand-ins for Places / DAVIS-YFCC100M (tiny preset); NOT thesis data."}
    write_text(root / META, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return root


def generate(out: str | Path, cfg: EmbeddedSingleConfig = EmbeddedSingleConfig()) -> Path:
    """Build in a temporary sibling folder and rename onto ``out`` (only an earlier embedded set is replaced)."""
    return replace_dir(out, META, "an embedded single-image dataset", lambda tmp: write_dataset(tmp, cfg))
