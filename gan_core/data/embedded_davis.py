"""A small, deterministic DAVIS-format video dataset built from CC0 scikit-image samples.

Why: the tiny preset and the tests need DAVIS-shaped data without a 800 MB download.
Every object mask is exact by construction (no segmentation is estimated):

* object "horse": the openclipart horse silhouette of ``skimage/data/horse.png``
  ("No copyright restrictions. CC0 given by owner", scikit-image docstring), filled
  with a tinted brick or gravel texture (CC0), scaled, flipped and moved across frames;
* object "ellipse" (second object of multi-object sequences): an analytic ellipse
  filled with another tinted texture; it is drawn in front of the horse;
* background: a tinted grass / gravel / brick texture (CC0) that pans slowly.

Layout = DAVIS-2017 trainval (reference notes, downstream-protocols §8)::

    ROOT/JPEGImages/480p/<seq>/00000.jpg      JPEG quality 95
    ROOT/Annotations/480p/<seq>/00000.png     palette PNG (DAVIS palette), ids 1..K, 0 = background
    ROOT/ImageSets/2017/{train,val}.txt       all sequences
    ROOT/ImageSets/2016/{train,val}.txt       single-object sequences only
    ROOT/embedded_davis.json                  parameters, source checksums and licences

The same parameters give byte-identical files (fixed seeds, no timestamps). The source
images are pinned by sha256 (values of ``skimage.data._registry.registry``); a
different file raises DataError rather than silently producing other data.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError, DataError
from ..utils.atomic import replace_dir, atomic_path, write_text
from ..utils.images import write_mask

# sha256 of the scikit-image sample files (skimage.data._registry.registry, scikit-image 0.26;
# the reference notes, metrics.md §5.7 item 16, list the same prefixes).
SOURCE_SHA256 = {
    "horse.png": "c7fb60789fe394c485f842291ea3b21e50d140f39d6dcb5fb9917cc178225455",
    "brick.png": "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
    "grass.png": "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
    "gravel.png": "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
}
SOURCE_LICENCES = {
    "horse.png": "openclipart horse-by-marauder: no copyright restrictions, CC0 (scikit-image docstring)",
    "brick.png": "CC0 texture (scikit-image docstring)",
    "grass.png": "CC0 texture (scikit-image docstring)",
    "gravel.png": "CC0 texture (scikit-image docstring)",
}
FORMAT_VERSION = 1

# Tint colour pairs (dark, light) in RGB. Object and background palettes are disjoint
# in hue so that objects stand out (the tests check this on the JPEGs).
_OBJECT_TINTS = [((120, 30, 20), (250, 140, 90)), ((110, 60, 0), (255, 210, 60)), ((90, 20, 90), (240, 120, 230))]
_ELLIPSE_TINTS = [((10, 30, 110), (120, 170, 255)), ((0, 90, 100), (90, 240, 240))]
_BG_TINTS = [((15, 50, 15), (90, 160, 70)), ((40, 40, 45), (140, 140, 150)), ((20, 55, 40), (100, 150, 120))]


@dataclass(frozen=True)
class EmbeddedDavisConfig:
    """Parameters of the generated dataset (defaults: DAVIS 480p frame size)."""

    height: int = 480
    width: int = 854
    n_train_sequences: int = 3
    n_val_sequences: int = 3
    n_multi_object: int = 1  # the last n sequences of each split have two objects (horse + ellipse)
    n_frames: int = 8
    seed: int = 0
    jpeg_quality: int = 95

    def __post_init__(self):
        if self.height < 16 or self.width < 16:
            raise ConfigError(f"embedded DAVIS: frame size {self.height}x{self.width} is below 16x16")
        if self.n_frames < 1 or self.n_train_sequences < 0 or self.n_val_sequences < 1:
            raise ConfigError("embedded DAVIS: need n_frames >= 1, n_val_sequences >= 1, n_train_sequences >= 0")
        if not 0 <= self.n_multi_object < self.n_val_sequences:
            raise ConfigError(
                "embedded DAVIS: n_multi_object must leave at least one single-object val sequence "
                "(the DAVIS-2016 lists hold single-object sequences only)"
            )
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError("embedded DAVIS: jpeg_quality must lie in 1..100")


@dataclass(frozen=True)
class SequenceSpec:
    name: str
    split: str
    n_objects: int
    index: int  # global index, part of the RNG seed


@dataclass(frozen=True)
class Sources:
    horse: np.ndarray  # bool (h, w), True = horse, cropped to its bounding box
    textures: dict  # name -> float32 (512, 512) in [0, 1]
    sha256: dict


# ----------------------------------------------------------------- sources
def skimage_data_dir() -> Path:
    """scikit-image's bundled data folder, located without importing scikit-image."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("skimage", "scikit-image is not installed; it ships the CC0 sample images used here")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _registry_hashes() -> dict:
    try:
        from skimage.data._registry import registry  # type: ignore
    except Exception:  # pragma: no cover - private module moved
        return {}
    return {k.split("/", 1)[1]: v for k, v in registry.items() if k.startswith("data/")}


def load_sources(data_dir: str | Path | None = None) -> Sources:
    """Read the pinned sample images; raise DataError naming a file whose sha256 differs."""
    data_dir = Path(data_dir) if data_dir is not None else skimage_data_dir()
    reg = _registry_hashes()
    arrays = {}
    for name, want in SOURCE_SHA256.items():
        path = data_dir / name
        if not path.is_file():
            raise DataError(path, "scikit-image sample image is missing (needed by the embedded DAVIS dataset)")
        got = hashlib.sha256(path.read_bytes()).hexdigest()
        if got != want or (name in reg and reg[name] != want):
            raise DataError(
                path,
                f"sha256 {got} differs from the pinned {want} (scikit-image registry: {reg.get(name, 'n/a')}); "
                "this scikit-image version ships a different sample image, so the embedded dataset would "
                "differ. Install scikit-image 0.26 or update SOURCE_SHA256 deliberately.",
            )
        with Image.open(path) as im:
            im.load()
            if name == "horse.png":
                # Same decoding as skimage.data.horse(): RGBA over white, luminance, > 0.5 = background.
                a = np.asarray(im.convert("RGBA"), dtype=np.float64) / 255.0
                rgb = a[..., :3] * a[..., 3:] + (1.0 - a[..., 3:])
                gray = rgb @ np.array([0.2125, 0.7154, 0.0721])
                arrays[name] = gray <= 0.5
            else:
                arrays[name] = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    horse = arrays.pop("horse.png")
    ys, xs = np.nonzero(horse)
    horse = horse[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    textures = {k[:-4]: v for k, v in arrays.items()}
    return Sources(horse=np.ascontiguousarray(horse), textures=textures, sha256=dict(SOURCE_SHA256))


# --------------------------------------------------------------- rendering
def sequence_specs(cfg: EmbeddedDavisConfig) -> list[SequenceSpec]:
    """Names and object counts; multi-object sequences come last in each split."""
    specs = []
    idx = 0
    for split, n in (("train", cfg.n_train_sequences), ("val", cfg.n_val_sequences)):
        n_multi = min(cfg.n_multi_object, n)
        for i in range(n):
            k = 2 if i >= n - n_multi else 1
            kind = "horse" if k == 1 else "horse-ellipse"
            specs.append(SequenceSpec(f"{split}-{kind}-{i:02d}", split, k, idx))
            idx += 1
    return specs


def _bilinear(tex: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Sample a (periodic) texture at float coordinates with bilinear interpolation."""
    h, w = tex.shape
    y0 = np.floor(y).astype(np.int64)
    x0 = np.floor(x).astype(np.int64)
    fy = (y - y0).astype(np.float32)
    fx = (x - x0).astype(np.float32)
    y0m, y1m = y0 % h, (y0 + 1) % h
    x0m, x1m = x0 % w, (x0 + 1) % w
    top = tex[y0m, x0m] * (1 - fx) + tex[y0m, x1m] * fx
    bot = tex[y1m, x0m] * (1 - fx) + tex[y1m, x1m] * fx
    return top * (1 - fy) + bot * fy


def _tint(gray: np.ndarray, pair) -> np.ndarray:
    lo, hi = (np.asarray(c, dtype=np.float32) for c in pair)
    return lo + (hi - lo) * gray[..., None]


def _lerp(a, b, t):
    return a + (b - a) * t


def render_sequence(spec: SequenceSpec, cfg: EmbeddedDavisConfig, src: Sources) -> tuple[list, list]:
    """Frames (uint8 H x W x 3) and label maps (uint8 H x W, ids 0..K) of one sequence."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, spec.index, FORMAT_VERSION]))
    H, W, T = cfg.height, cfg.width, cfg.n_frames
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32) + 0.5
    tex_names = sorted(src.textures)

    # Background: texture, tint, zoom (texture pixels per frame pixel) and pan.
    bg_tex = src.textures[["grass", "gravel", "brick"][rng.integers(3)]]
    bg_tint = _BG_TINTS[rng.integers(len(_BG_TINTS))]
    bg_zoom = 400.0 / max(H, W) * rng.uniform(0.8, 1.1)
    bg_off = rng.uniform(0, 512, size=2)
    bg_pan = rng.uniform(-0.08, 0.08, size=2) * 512 / max(T - 1, 1)

    # Horse: scale from its bounding box to a height fraction of the frame (limited by width).
    sh, sw = src.horse.shape
    frac0, frac1 = rng.uniform(0.35, 0.55, size=2)
    s0, s1 = (min(f * H / sh, 0.45 * W / sw) for f in (frac0, frac1))
    smax = max(s0, s1)
    hy, hx = sh * smax / 2, sw * smax / 2
    lo_y, hi_y = hy, max(hy, H - hy)
    x_hi = W * (0.5 if spec.n_objects == 2 else 1.0)  # leave the right half to the ellipse at t=0
    c0 = np.array([rng.uniform(lo_y, hi_y), rng.uniform(min(hx, x_hi - hx), max(hx, x_hi - hx))])
    c1 = np.array([rng.uniform(lo_y, hi_y), rng.uniform(hx, max(hx, W - hx))])
    flip = bool(rng.integers(2))
    horse_tex = src.textures[["brick", "gravel"][rng.integers(2)]]
    horse_tint = _OBJECT_TINTS[rng.integers(len(_OBJECT_TINTS))]
    tex_zoom = rng.uniform(0.6, 1.0)

    if spec.n_objects == 2:
        ea = rng.uniform(0.10, 0.16) * min(H, W) * np.array([1.0, rng.uniform(1.2, 1.8)])  # (ry, rx)
        ea[1] = min(ea[1], 0.2 * W)
        e0 = np.array([rng.uniform(ea[0], H - ea[0]), rng.uniform(W / 2 + ea[1], max(W / 2 + ea[1], W - ea[1]))])
        e1 = np.array([rng.uniform(ea[0], H - ea[0]), rng.uniform(ea[1], W - ea[1])])
        ell_tex = src.textures[tex_names[rng.integers(len(tex_names))]]
        ell_tint = _ELLIPSE_TINTS[rng.integers(len(_ELLIPSE_TINTS))]

    frames, labels = [], []
    for t in range(T):
        a = t / max(T - 1, 1)
        by = (yy + bg_pan[0] * t) * bg_zoom + bg_off[0]
        bx = (xx + bg_pan[1] * t) * bg_zoom + bg_off[1]
        img = _tint(_bilinear(bg_tex, by, bx), bg_tint)
        lab = np.zeros((H, W), dtype=np.uint8)

        s = _lerp(s0, s1, a)
        cy, cx = _lerp(c0, c1, a)
        # Inverse map frame pixel -> silhouette pixel (nearest neighbour = exact binary mask).
        v = (yy - cy) / s + sh / 2
        u = (xx - cx) / s
        u = (-u if flip else u) + sw / 2
        iv, iu = np.floor(v).astype(np.int64), np.floor(u).astype(np.int64)
        inside = (iv >= 0) & (iv < sh) & (iu >= 0) & (iu < sw)
        m = np.zeros((H, W), dtype=bool)
        m[inside] = src.horse[iv[inside], iu[inside]]
        fill = _tint(_bilinear(horse_tex, v * tex_zoom, u * tex_zoom), horse_tint)
        img[m] = fill[m]
        lab[m] = 1

        if spec.n_objects == 2:
            ey, ex = _lerp(e0, e1, a)
            em = ((yy - ey) / ea[0]) ** 2 + ((xx - ex) / ea[1]) ** 2 <= 1.0
            efill = _tint(_bilinear(ell_tex, (yy - ey) * 0.8 + 37, (xx - ex) * 0.8 + 91), ell_tint)
            img[em] = efill[em]
            lab[em] = 2

        frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
        labels.append(lab)
    present = set(np.unique(labels[0]).tolist())
    if present != set(range(spec.n_objects + 1)):
        raise RuntimeError(f"embedded DAVIS: sequence {spec.name} frame 0 lacks objects ({present})")
    return frames, labels


# ------------------------------------------------------------------ writing
def _save_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=quality)


def write_dataset(root: str | Path, cfg: EmbeddedDavisConfig = EmbeddedDavisConfig(), sources: Sources | None = None) -> Path:
    """Write the dataset into ``root`` (created; files written atomically one by one)."""
    root = Path(root)
    src = sources or load_sources()
    specs = sequence_specs(cfg)
    for spec in specs:
        frames, labels = render_sequence(spec, cfg, src)
        for t, (img, lab) in enumerate(zip(frames, labels)):
            _save_jpeg(root / "JPEGImages" / "480p" / spec.name / f"{t:05d}.jpg", img, cfg.jpeg_quality)
            write_mask(root / "Annotations" / "480p" / spec.name / f"{t:05d}.png", lab, palette=True)
    for split in ("train", "val"):
        names17 = [s.name for s in specs if s.split == split]
        names16 = [s.name for s in specs if s.split == split and s.n_objects == 1]
        write_text(root / "ImageSets" / "2017" / f"{split}.txt", "".join(n + "\n" for n in names17))
        write_text(root / "ImageSets" / "2016" / f"{split}.txt", "".join(n + "\n" for n in names16))
    meta = {
        "generator": "gan_core.data.embedded_davis",
        "format_version": FORMAT_VERSION,
        "config": dataclasses.asdict(cfg),
        "sequences": {s.name: {"split": s.split, "n_objects": s.n_objects} for s in specs},
        "sources_sha256": src.sha256,
        "licences": SOURCE_LICENCES,
        "note": "Synthetic data for tests and the tiny preset; numbers on it are NOT thesis numbers.",
    }
    write_text(root / "embedded_davis.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return root


def generate(out: str | Path, cfg: EmbeddedDavisConfig = EmbeddedDavisConfig()) -> Path:
    """Build the dataset in a temporary sibling folder and rename it onto ``out``.

    An existing ``out`` is replaced only if it is an earlier embedded dataset (it has
    ``embedded_davis.json``); anything else there is an error, never deleted.
    """
    return replace_dir(out, "embedded_davis.json", "an embedded DAVIS dataset", lambda tmp: write_dataset(tmp, cfg))
