"""LPIPS diversity and distance-to-train with the ``lpips`` package (v0.1), built without downloads.

LPIPS (thesis l.758-766 eq. 3.3 is a simplification; the package formula is used, reference notes
metrics.md §2.3): ScalingLayer -> trunk ReLU features -> unit-normalise over channels -> squared
difference -> learned 1x1 ``lin`` layers -> spatial mean -> sum over layers. Inputs are in [-1, 1].

Construction never touches the network: ``lpips.LPIPS(pretrained=True, net=..., pnet_rand=True)``
builds the trunk with random weights (no torchvision download) and loads the linear layers shipped
in the wheel (sha256-checked here against reference notes §2.3); the ImageNet trunk is then read
from the local torchvision file (manifest ``tv_alexnet`` / ``tv_vgg16``) with
``torch.load(weights_only=True)`` and loaded strictly into ``model.net``. ``trunk_weights=None``
keeps the seeded random trunk (tiny preset only) and is labelled ``...random-trunk(seed=S)``.

Speed: the trunk runs once per image; pair distances are evaluated from cached features in chunks
of pairs (``pair_budget`` feature elements per chunk), never one pair per call.

Conventions / options:

* ``net="alex"`` (package default; SIV-GAN/OSMIS, thesis l.1472) or ``"vgg"`` (CDC intra-LPIPS).
* ``official_01_quirk`` (off by default): the official SIV-GAN/OSMIS ``evaluate.py`` feeds
  ``ToTensor()`` images in [0, 1] with ``normalize=False``, i.e. as if they were in [-1, 1]. With
  the flag, images in [-1, 1] are mapped to [0, 1] and fed unchanged, reproducing that quirk.
* Distance to train (thesis l.1474): for every fake, the minimum LPIPS to the training images
  "augmented in the same way as during training". The official code uses the un-augmented images
  (``augment_fn=None`` here). With an ``augment_fn`` the pool is the original images plus
  ``n_aug`` seeded augmented copies of each (``n_aug`` is a project choice, not a thesis number).
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

from ..errors import ChecksumError, DataError
from .diversity import pair_indices
from .fid import default_device

NETS = ("alex", "vgg")
TRUNK_ENTRY = {"alex": "tv_alexnet", "vgg": "tv_vgg16"}
# sha256 of the linear-layer files in the lpips 0.1.4 wheel (reference notes metrics.md §2.3).
LIN_SHA256 = {
    "alex": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    "vgg": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
}


@dataclass
class LPIPSConfig:
    """LPIPS settings; defaults = lpips 0.1.4 package defaults / thesis."""

    net: str = "alex"  # alex (SIV-GAN/OSMIS/OASIS) | vgg (CDC intra-LPIPS)
    official_01_quirk: bool = False  # SIV-GAN evaluate.py: [0,1] inputs with normalize=False
    batch_size: int = 16  # images per trunk forward
    pair_budget: int = 1 << 26  # feature elements per chunk of pairs (memory bound, not a result setting)
    device: str | None = None  # None: cuda if available


def _lin_weights_path(net: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 'lpips' package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "weights" / "v0.1" / f"{net}.pth"


def _check_lin_weights(net: str) -> None:
    path = _lin_weights_path(net)
    if not path.is_file():
        raise DataError(path, "LPIPS linear-layer weights missing from the lpips package")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if sha != LIN_SHA256[net]:
        raise ChecksumError(path, "sha256", LIN_SHA256[net], sha)


def _load_trunk(model: torch.nn.Module, net: str, path: Path) -> None:
    """Copy torchvision ``features.<i>.*`` tensors into lpips' ``slice<k>.<i>.*`` (strict)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise DataError(path, f"expected a torchvision {net} state dict, got {type(state).__name__}")
    target = model.net.state_dict()
    mapped, used = {}, set()
    for key in target:
        src = "features." + key.split(".", 1)[1]  # slice3.6.weight -> features.6.weight
        if src not in state:
            raise DataError(path, f"not a torchvision {net} state dict: '{src}' is missing")
        mapped[key] = state[src]
        used.add(src)
    extra = sorted(k for k in state if k.startswith("features.") and k not in used)
    if extra:
        raise DataError(path, f"unexpected trunk tensors for lpips '{net}': {extra[:5]}")
    try:
        model.net.load_state_dict(mapped, strict=True)
    except RuntimeError as exc:
        raise DataError(path, f"trunk tensors do not fit lpips '{net}' ({exc})") from exc


def build_lpips_model(net: str = "alex", trunk_weights: str | Path | None = None, seed: int = 0):
    """An ``lpips.LPIPS`` v0.1 model (eval, frozen) and its weights label; nothing is downloaded."""
    if net not in NETS:
        raise ValueError(f"LPIPS net must be one of {NETS}, got {net!r}")
    import lpips

    _check_lin_weights(net)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's "pretrained is deprecated"
        torch.manual_seed(seed)
        model = lpips.LPIPS(pretrained=True, net=net, version="0.1", pnet_rand=True, verbose=False)
    if trunk_weights is None:
        label = f"lpips-v0.1-{net}+random-trunk(seed={seed})"
    else:
        _load_trunk(model, net, Path(trunk_weights))
        label = f"lpips-v0.1-{net}+imagenet-trunk"
    model.eval().requires_grad_(False)
    return model, label


class LPIPSDistance:
    """Batched LPIPS: cached per-image features, distances for many pairs per call."""

    def __init__(self, model, weights_label: str, cfg: LPIPSConfig = LPIPSConfig()):
        self.cfg = cfg
        self.device = default_device(cfg.device)
        self.model = model.to(self.device).eval()
        self.weights_label = weights_label + (",official-01-quirk" if cfg.official_01_quirk else "")

    @classmethod
    def build(cls, cfg: LPIPSConfig = LPIPSConfig(), trunk_weights: str | Path | None = None,
              seed: int = 0) -> "LPIPSDistance":
        model, label = build_lpips_model(cfg.net, trunk_weights, seed)
        return cls(model, label, cfg)

    # ---------------------------------------------------------------- features
    def _check(self, x: torch.Tensor, name: str) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{name}: expected a tensor (N, 3, H, W)")
        if x.numel() and (float(x.min()) < -1.001 or float(x.max()) > 1.001):
            raise ValueError(f"{name}: values must lie in [-1, 1] (uint8 or [0, 255] input?)")

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised trunk features (one tensor per layer) of images in [-1, 1], batched."""
        import lpips

        self._check(x, "images")
        chunks: list[list[torch.Tensor]] = []
        for k in range(0, x.shape[0], self.cfg.batch_size):
            b = x[k : k + self.cfg.batch_size].to(device=self.device, dtype=torch.float32)
            if self.cfg.official_01_quirk:
                b = (b + 1.0) / 2.0  # fed as-is, like ToTensor() + normalize=False
            outs = self.model.net(self.model.scaling_layer(b))
            chunks.append([lpips.normalize_tensor(o) for o in outs])
        return [torch.cat(layer) for layer in zip(*chunks)]

    def _chunk(self, feats: list[torch.Tensor]) -> int:
        per_pair = sum(f[0].numel() for f in feats)
        return max(1, self.cfg.pair_budget // per_pair)

    @torch.no_grad()
    def _distances(self, fa: list[torch.Tensor], fb: list[torch.Tensor], ia: torch.Tensor,
                   ib: torch.Tensor) -> torch.Tensor:
        """LPIPS of the pairs (fa[ia[k]], fb[ib[k]]), as in ``lpips.LPIPS.forward``, chunked: (P,) float64."""
        out = []
        step = self._chunk(fa)
        for s in range(0, ia.numel(), step):
            a_idx, b_idx = ia[s : s + step].to(self.device), ib[s : s + step].to(self.device)
            val = 0.0
            for lin, a, b in zip(self.model.lins, fa, fb):
                val = val + lin((a[a_idx] - b[b_idx]) ** 2).mean((2, 3), keepdim=True)
            out.append(val.flatten().double().cpu())
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)

    # ---------------------------------------------------------------- public
    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS(x[k], y[k]) for two batches of the same shape: (N,) float64."""
        if x.shape != y.shape:
            raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
        idx = torch.arange(x.shape[0])
        return self._distances(self.features(x), self.features(y), idx, idx)

    def pairwise(self, x: torch.Tensor, max_pairs: int | None = None, seed: int = 0) -> torch.Tensor:
        """LPIPS of all pairs i<j (or a seeded subset of ``max_pairs``), in ``pair_indices`` order."""
        i, j = pair_indices(x.shape[0], max_pairs, seed)
        f = self.features(x)
        return self._distances(f, f, i, j)

    def pairwise_mean(self, x: torch.Tensor, max_pairs: int | None = None, seed: int = 0) -> float:
        return float(self.pairwise(x, max_pairs, seed).mean())

    def cross(self, a: torch.Tensor, b: torch.Tensor | Iterable[torch.Tensor]) -> torch.Tensor:
        """Matrix (Na, Nb) of LPIPS(a[i], b[j]).

        Features of ``a`` are kept; ``b`` (a tensor or an iterable of batches) is streamed batch by
        batch, so put the larger set second.
        """
        fa = self.features(a)
        blocks = []
        if isinstance(b, torch.Tensor):
            b = b.split(self.cfg.batch_size)
        for bb in b:
            if tuple(bb.shape[-2:]) != tuple(a.shape[-2:]):
                raise ValueError(f"image sizes differ: {tuple(a.shape[-2:])} vs {tuple(bb.shape[-2:])}")
            fb = self.features(bb)
            ia, ib = torch.meshgrid(torch.arange(a.shape[0]), torch.arange(bb.shape[0]), indexing="ij")
            blocks.append(self._distances(fa, fb, ia.reshape(-1), ib.reshape(-1)).view(a.shape[0], bb.shape[0]))
        if not blocks:
            raise ValueError("no images on the second side of the cross distance")
        return torch.cat(blocks, dim=1)


# -------------------------------------------------------------------- module-level API
def pairwise_diversity(images: torch.Tensor, metric: LPIPSDistance, max_pairs: int | None = None,
                       seed: int = 0) -> float:
    """Mean LPIPS over pairs i<j of generated images in [-1, 1] (thesis l.1472 "LPIPS across pairs")."""
    return metric.pairwise_mean(images, max_pairs, seed)


def training_augment(kind: str = "siv", prob: float = 0.7) -> Callable[[torch.Tensor], torch.Tensor]:
    """The training augmentation (gan_core.augment.diffaug; thesis l.1460: SIV set, p=0.7) as x -> aug(x)."""
    from ..augment.diffaug import augment

    def fn(x: torch.Tensor) -> torch.Tensor:
        return augment([x], None, kind=kind, prob=prob)[0][0].clamp(-1.0, 1.0)

    return fn


def augmented_pool(train: torch.Tensor, augment_fn: Callable[[torch.Tensor], torch.Tensor] | None,
                   n_aug: int, seed: int = 0, batch_size: int = 16) -> Iterator[torch.Tensor]:
    """Batches of the training images, then ``n_aug`` augmented copies of each (seeded, global RNG untouched)."""
    for k in range(0, train.shape[0], batch_size):
        yield train[k : k + batch_size]
    if augment_fn is None or n_aug <= 0:
        return
    state = torch.Generator().manual_seed(seed).get_state()
    for _ in range(n_aug):
        for k in range(0, train.shape[0], batch_size):
            saved = torch.get_rng_state()
            torch.set_rng_state(state)
            try:
                out = augment_fn(train[k : k + batch_size])
                state = torch.get_rng_state()
            finally:
                torch.set_rng_state(saved)
            yield out


def nearest_train_distances(fakes: torch.Tensor, train_images: torch.Tensor, metric: LPIPSDistance,
                            augment_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
                            n_aug: int = 20, seed: int = 0) -> torch.Tensor:
    """Per fake, the minimum LPIPS to the (augmented) training images: (N,) float64."""
    pool = augmented_pool(train_images, augment_fn, n_aug, seed, metric.cfg.batch_size)
    return metric.cross(fakes, pool).min(dim=1).values


def distance_to_train(fakes: torch.Tensor, train_images: torch.Tensor, metric: LPIPSDistance,
                      augment_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
                      n_aug: int = 20, seed: int = 0) -> float:
    """"Dist. to train" (thesis l.1474): mean over fakes of the min LPIPS to the (augmented) training images."""
    return float(nearest_train_distances(fakes, train_images, metric, augment_fn, n_aug, seed).mean())


__all__ = [
    "LPIPSConfig", "LPIPSDistance", "build_lpips_model", "pairwise_diversity", "distance_to_train",
    "nearest_train_distances", "training_augment", "augmented_pool", "TRUNK_ENTRY", "NETS",
]
