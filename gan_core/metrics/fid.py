"""FID with pytorch-fid 0.3.0's network and conventions (thesis l.753 eq. 3.2; reference notes metrics.md §2.1).

* Network: pytorch-fid's "FID Inception" (TF-ported weights ``pt_inception-2015-12-05-6726825d.pth``,
  manifest entry ``fid_inception``): torchvision's Inception-v3 skeleton (1008 classes, no aux
  head) with pytorch-fid's patched blocks ``FIDInceptionA/C/E_1/E_2``. The architecture is taken
  from the installed ``pytorch_fid.inception`` module, but it is assembled here so that nothing
  is downloaded: the state dict is read from a local file with
  ``torch.load(weights_only=True)`` and loaded with ``strict=True``. ``weights=None`` gives a
  seeded random network labelled ``random-init(seed=S)`` (tiny preset only; NOT FID numbers).
* Input pipeline: images in [-1, 1] are mapped to [0, 1], bilinearly resized to 299x299
  (``align_corners=False``, no antialias) and mapped to 2x-1, exactly the order of pytorch-fid's
  ``resize_input`` / ``normalize_input``; pool3 features (2048-d, after the adaptive average pool).
* Statistics: mean and unbiased covariance (float64, :func:`gan_core.metrics.frechet.gaussian_stats`);
  distance :func:`gan_core.metrics.frechet.frechet_distance` (``method="sqrtm"`` reproduces
  pytorch-fid's ``calculate_frechet_distance``; the default ``"auto"`` is the exact, faster route).
* Real statistics of an image folder are cached to ``<cache_dir>/fid_stats_<key>.npz`` where the
  key hashes the file list (path, size, mtime), the network label and the pipeline version.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataError
from ..utils.atomic import atomic_path
from .frechet import _drop_roundoff, frechet_distance, frechet_from_features, gaussian_stats
from .inception import SIFIDInception

FID_ENTRY = "fid_inception"
FID_SIZE = 299
FEATURE_DIM = 2048
PIPELINE = "pytorch-fid-0.3.0:bilinear299:pool3"  # part of the cache key


@dataclass
class FIDConfig:
    """FID settings; defaults = pytorch-fid 0.3.0 (reference notes metrics.md §2.1)."""

    batch_size: int = 50  # pytorch-fid default; does not change the result
    method: str = "auto"  # Fréchet trace route: auto | sqrtm (pytorch-fid) | eigh | svd (all exact)
    device: str | None = None  # None: cuda if available, else cpu


def default_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _build_fid_skeleton() -> nn.Module:
    """pytorch-fid's ``fid_inception_v3()`` architecture without its download (same parameter names)."""
    from pytorch_fid import inception as pfi

    net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return net


# pytorch-fid's blocks 0..3 (BLOCK_INDEX_BY_DIM 2048 -> 3), each ending in its pooling layer.
_LAYERS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1",
    "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
    "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool",
)


class FIDInception(nn.Module):
    """pytorch-fid's FID Inception returning pool3 features (B, 2048) for images in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _build_fid_skeleton()
        self.weights_label = "uninitialised"
        self.eval()

    @classmethod
    def from_weights(cls, path: str | Path | None, seed: int = 0) -> "FIDInception":
        """Load the FID state dict at ``path`` (strict, weights_only), or a seeded random init if None.

        Checksums are the caller's job (:func:`gan_core.metrics.weights.resolve_weights`); this never
        downloads.
        """
        model = cls()
        if path is None:
            # Same deterministic init as the SIFID network (Kaiming fan-in, identity BatchNorm).
            SIFIDInception.reset_parameters(model.net, seed)
            model.weights_label = f"random-init(seed={seed})"
        else:
            path = Path(path)
            state = torch.load(path, map_location="cpu", weights_only=True)
            try:
                model.net.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise DataError(path, f"not pytorch-fid's FID Inception state dict ({exc})") from exc
            model.weights_label = "pt_inception-2015-12-05"
        model.requires_grad_(False)
        return model.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
        x01 = (x + 1.0) / 2.0
        if tuple(x01.shape[-2:]) != (FID_SIZE, FID_SIZE):
            x01 = F.interpolate(x01, size=(FID_SIZE, FID_SIZE), mode="bilinear", align_corners=False)
        h = 2.0 * x01 - 1.0
        for name in _LAYERS:
            h = getattr(self.net, name)(h)
        return h.flatten(1)


# ------------------------------------------------------------------------------ features / stats
def _batches(images: torch.Tensor | Iterable[torch.Tensor], batch_size: int) -> Iterable[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
        for i in range(0, images.shape[0], batch_size):
            yield images[i : i + batch_size]
    else:
        yield from images


@torch.no_grad()
def fid_features(
    images: torch.Tensor | Iterable[torch.Tensor], net: FIDInception, batch_size: int = 50,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """pool3 features (N, 2048), float64, of images in [-1, 1]: a tensor (N, 3, H, W) or an iterable of batches."""
    dev = default_device(device)
    net = net.to(dev).eval()
    out = [net(b.to(device=dev, dtype=torch.float32)).double().cpu() for b in _batches(images, batch_size)]
    if not out:
        raise ValueError("no images to compute FID features of")
    return torch.cat(out).numpy()


@dataclass
class FIDStats:
    """Gaussian statistics of a feature set, with the label of the network that produced them."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int
    weights_label: str

    @classmethod
    def from_features(cls, features: np.ndarray, weights_label: str) -> "FIDStats":
        mu, sigma = gaussian_stats(features)
        return cls(mu, sigma, int(np.asarray(features).shape[0]), weights_label)

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, mu=self.mu, sigma=self.sigma, n=np.int64(self.n),
                     weights_label=np.array(self.weights_label), pipeline=np.array(PIPELINE))

    @classmethod
    def load(cls, path: str | Path) -> "FIDStats":
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "FID statistics file does not exist")
        try:
            with np.load(path, allow_pickle=False) as z:
                mu, sigma = z["mu"].astype(np.float64), z["sigma"].astype(np.float64)
                n = int(z["n"]) if "n" in z else -1
                label = str(z["weights_label"]) if "weights_label" in z else "unknown"
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(path, f"not an FID statistics .npz with 'mu' and 'sigma' ({exc})") from exc
        if mu.shape != (FEATURE_DIM,) or sigma.shape != (FEATURE_DIM, FEATURE_DIM):
            raise DataError(path, f"expected mu (2048,) and sigma (2048, 2048), got {mu.shape} and {sigma.shape}")
        return cls(mu, sigma, n, label)


def files_key(files: Sequence[str | Path], weights_label: str) -> str:
    """Cache key of a file list: sha256 of (resolved path, size, mtime_ns) per file, label and pipeline."""
    rows = []
    for f in files:
        p = Path(f).resolve()
        st = p.stat()
        rows.append([str(p), st.st_size, st.st_mtime_ns])
    blob = json.dumps({"files": rows, "weights": weights_label, "pipeline": PIPELINE}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def statistics_of_files(
    files: Sequence[str | Path], net: FIDInception, cfg: FIDConfig = FIDConfig(),
    cache_dir: str | Path | None = None,
) -> FIDStats:
    """FID statistics of image files, read from / written to the ``.npz`` cache when ``cache_dir`` is set."""
    from .image_io import iter_image_batches  # local import: keeps this module free of file-format code

    files = [Path(f) for f in files]
    if len(files) < 2:
        raise ValueError(f"FID needs at least 2 real images, got {len(files)}")
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"fid_stats_{files_key(files, net.weights_label)}.npz"
        if cache.is_file():
            return FIDStats.load(cache)
    feats = fid_features(iter_image_batches(files, cfg.batch_size), net, cfg.batch_size, cfg.device)
    stats = FIDStats.from_features(feats, net.weights_label)
    if cache is not None:
        stats.save(cache)
    return stats


def fid_between(
    fake_images: torch.Tensor | Iterable[torch.Tensor],
    real: torch.Tensor | FIDStats | str | Path,
    net: FIDInception,
    cfg: FIDConfig = FIDConfig(),
) -> float:
    """FID (thesis eq. 3.2) between fake images in [-1, 1] and real images / cached statistics / an .npz path."""
    if isinstance(real, (str, Path)):
        real = FIDStats.load(real)
    feats_f = fid_features(fake_images, net, cfg.batch_size, cfg.device)
    if not isinstance(real, FIDStats):
        # Both feature sets at hand: the exact route is picked from (n1, n2, d) (sample-space SVD for n < 2048).
        feats_r = fid_features(real, net, cfg.batch_size, cfg.device)
        return frechet_from_features(feats_f, feats_r, method=cfg.method)
    if real.weights_label not in (net.weights_label, "unknown"):  # "unknown": a plain pytorch-fid .npz
        raise ValueError(
            f"real FID statistics were computed with '{real.weights_label}', the network is "
            f"'{net.weights_label}'; recompute them"
        )
    if cfg.method == "auto" and feats_f.shape[0] < feats_f.shape[1]:
        return frechet_features_vs_stats(feats_f, real.mu, real.sigma)
    stats_f = FIDStats.from_features(feats_f, net.weights_label)
    return frechet_distance(stats_f.mu, stats_f.sigma, real.mu, real.sigma, method=cfg.method)


def frechet_features_vs_stats(features: np.ndarray, mu_r: np.ndarray, sigma_r: np.ndarray) -> float:
    """Exact FD between the Gaussian of ``features`` (n, d), n < d, and N(mu_r, sigma_r), in O(n d^2).

    With S_f = A^T A (A = centred features / sqrt(n - 1), n x d), the non-zero eigenvalues of
    S_r S_f equal those of the symmetric PSD n x n matrix A S_r A^T, so
    tr sqrt(S_r S_f) = sum sqrt(eig(A S_r A^T)) -- no d x d eigendecomposition (cached real
    statistics vs. a few thousand fakes, or the tiny preset).
    """
    f = torch.as_tensor(np.asarray(features, dtype=np.float64))
    n = f.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 fake samples, got {n}")
    mu_f = f.mean(0)
    a = (f - mu_f) / np.sqrt(n - 1)
    s_r = torch.as_tensor(np.asarray(sigma_r, dtype=np.float64))
    m = a @ s_r @ a.T
    ev = _drop_roundoff(torch.linalg.eigvalsh(0.5 * (m + m.T)))
    diff = mu_f - torch.as_tensor(np.asarray(mu_r, dtype=np.float64))
    return float(diff @ diff + torch.trace(s_r) + (a * a).sum() - 2.0 * ev.sqrt().sum())


__all__ = ["FIDConfig", "FIDInception", "FIDStats", "fid_features", "fid_between", "statistics_of_files",
           "files_key", "FID_ENTRY"]
