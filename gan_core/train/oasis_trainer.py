"""Training OASIS (thesis Chapter 4) on a semantic dataset; plugs into ``gan_core.train.loop.run_training``.

One iteration (thesis Sec. 4.2.2-4.2.3, reference notes §1.4 "Update order"):

1. G step: label map t + 3D noise -> G -> D -> class-balanced (N+1)-CE with the real classes (Eq. 4.5).
2. D step: a new fake (no grad) -> fake-class CE; real -> class-balanced real-class CE (Eq. 4.2, 4.3);
   LabelMix(real, fake, M) -> lambda_LM * MSE(D(mix), LabelMix(D(real), D(fake))) (Eq. 4.4; D(real) and
   D(fake) not detached, notes §1.4). Adam, betas (0, 0.999), lr 1e-4 (G) / 4e-4 (D), constant (l.1121).
3. EMA of G (decay 0.9999, thesis l.1121), over the whole state: parameters and floating buffers (BN running
   statistics, SN u/v) are averaged, integer buffers copied (official ``update_EMA``, reference notes §1.5).

BN refresh (reference notes §1.5, OASIS issue #21): the EMA generator's batch-norm running statistics do not
match its averaged weights, so before exporting / sampling it is run in train mode, without gradients, on up
to ``bn_refresh_batches`` (official: 51) training batches. Our choice: the refresh is applied to a COPY of
the EMA generator (:meth:`OASISTrainer.refreshed_ema`), so the training state (and an exact resume) does not
depend on when exports happen; the official code refreshes its netEMA in place at every FID / save.

Random numbers: every draw of step ``i`` (3D noise, LabelMix bits) comes from a generator seeded with
(seed, rank, i); batches and flips come from :class:`~gan_core.data.semantic.ResumableStreamSampler`. A run
resumed from a checkpoint therefore repeats an uninterrupted run exactly (deterministic kernels), and
DataLoader workers do not change the result.

torch.distributed: launched by ``torchrun`` (WORLD_SIZE > 1), G and D are wrapped in DDP (G's batch norms
become SyncBatchNorm on CUDA, as the official SynchronizedBatchNorm2d), every rank reads its own shard, and
only rank 0 writes checkpoints (``LoopConfig.is_main``). ``batch_size`` is the GLOBAL batch (thesis l.1121:
32 on 4 V100s, as the official DataParallel batch), split evenly over the ranks.

Thesis vs official values (LabelMix weight, Cityscapes lr_g / EMA decay) are resolved in
:class:`~gan_core.nets.oasis_config.OASISConfig` (``preset_source``: thesis l.1121 by default, official
config.py values as the option; reference notes §1.5).

Ablations (thesis Sec. 4.3.6, Tables 4.2, 4.4, 4.8-4.11, appendix Tables 10 and 12): the networks come from
``nets/semantic_gan_factory.build_generator`` / ``build_discriminator`` and the objective from
``losses/semantic_gan.SemanticGANLoss``, so every switch of :class:`SemanticGANConfig` (G, D architecture,
label encoding, VGG, feature matching, LabelMix / CutMix / none, 3D-noise sampling) trains here; a plain
:class:`OASISConfig` means the default switches = OASIS. From the same state, a default-path step with
``class_balancing: official`` (the default before it became thesis Eq. 4.3) is bit-identical to the trainer
before the factory (same terms, order and per-step random draws; checked against commit e129970). Only D's
initial values differ for a given seed: the factory's wrapper re-initialises the U-Net with the same
xavier-normal(0.02) scheme (reference notes §1.5), i.e. a second draw of the same distribution; G's
initialisation is unchanged.

Discriminator state-dict layout: the factory wraps every D in ``SemanticDiscriminator`` (keys ``nets.0.*``).
When that wrapper adds nothing -- one OASIS U-Net with an N+1 encoding (no embeddings, the label map enters
only the loss) and no feature matching -- the trainer keeps the bare U-Net (``self.D``), so checkpoints of
the OASIS D keep the official keys (``body_down.*``, ``layer_up_last.*``, reference notes §1.8) and
``D(image)`` returns the (B, N+1, H, W) logits. All other discriminators keep the wrapper and its keys.

Optimisers (our choice, the thesis gives no SPADE+ schedule in the ablations): SPADE's TTUR settings
(``SPADEConfig.lr_g / lr_d / betas``, reference notes §3) when the SPADE+ generator is trained with a
PatchGAN (the SPADE+ baseline), the OASIS settings (thesis l.1121) otherwise -- "G SPADE+, D OASIS" of
Table 4.8 is trained as OASIS with the other generator.

SPADE+ with SPADE's image encoder (``spade.encoder``, the "SPADE+, Encoder" row of Table 4.2): in both the G and
the D step the generator encodes the REAL image of the batch and draws z = mu + eps * std with eps from the step's
seeded generator (NVlabs/SPADE models/pix2pix_model.py: ``generate_fake`` encodes the real image in both
``compute_generator_loss`` and ``compute_discriminator_loss``); the G step adds lambda_kld * KLD (logged as
``G_kld``). The encoder is a submodule of G, so ``opt_G`` trains it with G's learning rate and betas (as SPADE's
``create_optimizers``: G_params += netE params) and checkpoints / resume carry it. SPADE has no EMA; our choice:
the EMA covers the encoder like every other G parameter (the EMA generator stays one complete network whose
encoder matches its averaged weights, e.g. for image-guided sampling), but test-time samples, the BN refresh
and ``generate_for_labels`` use z ~ N(0, I) from the seeded generator, not the encoder (Table 4.2's multi-modal
samples; SPADE's generator samples z from the unit normal when none is given).

VGG loss (Tables 4.2, 4.8-4.10, appendix 12): ``vgg_weights`` is the torchvision vgg19 file (manifest entry
``tv_vgg19``); ``None`` = a seeded random VGG19 (tiny preset only; the table says so).
"""
from __future__ import annotations

import contextlib
import copy
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.profiler import record_function
from torch.utils.data import DataLoader

from ..data.semantic import ResumableStreamSampler, SemanticDataset, mix_seed, one_hot
from ..errors import ConfigError
from ..losses.oasis import labelmix, mixing_mask
from ..losses.semantic_gan import SemanticGANLoss
from ..losses.spade import VGG19Features, VGGLoss
from ..nets.oasis import NOISE_MODES, OASISDiscriminator
from ..nets.oasis_config import OASISConfig
from ..nets.patchgan import DOutput
from ..nets.semantic_gan_factory import SemanticGANConfig, build_discriminator, build_generator, pick_noise_mode

REFRESH_STREAM = 0x5EED  # seed stream of the BN-refresh noise (independent of the training draws)
RANDOM_VGG_SEED = 0x7667  # seed of the random VGG19 of the tiny preset (weights 'none')


@dataclass
class OASISRunConfig:
    """Run-time settings that do not change the model (the ``--params`` keys besides OASISConfig's)."""

    iterations: int | None = None   # None = num_epochs x floor(N / global batch) (thesis l.1121: epochs)
    checkpoint_every: int = 10000   # official freq_save_latest (reference notes §1.5)
    log_every: int = 1000           # official freq_print
    num_workers: int = 0            # DataLoader workers (official default 0)
    bn_refresh_batches: int = 51    # official update_EMA: up to 51 training batches (notes §1.5)
    noise_mode: str = "image"       # 3D noise of sampling and of the BN refresh (test time; thesis l.1093);
    #                                 the TRAINING sampling is SemanticGANConfig.noise_sampling (appendix Table 10)
    bf16: bool = False              # optional bfloat16 autocast (off = thesis fp32)
    channels_last: bool = False
    data_layout: str | None = None  # loader layout (gan_core/data/semantic.py LAYOUTS, e.g. ade_outdoor);
    #                                 None = OASISConfig.dataset (the label layout of the model)
    subset_list: str | None = None  # ade_outdoor: text file of the image stems of the subset

    def __post_init__(self) -> None:
        if self.noise_mode not in NOISE_MODES or self.noise_mode == "mixed":
            raise ConfigError(f"noise_mode must be image, region or pixel, got {self.noise_mode!r}")
        for key in ("checkpoint_every", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1")
        if self.num_workers < 0 or self.bn_refresh_batches < 0:
            raise ConfigError("num_workers and bn_refresh_batches must be >= 0")


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1; single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank)
    return info


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if hasattr(module, "module") else module


def build_vgg_loss(gan: SemanticGANConfig, weights_path: str | None) -> VGGLoss | None:
    """SPADE's VGG19 loss when ``gan.vgg_loss`` (None otherwise); ``weights_path`` None = seeded random VGG19
    (tiny preset only), built under a forked RNG so it does not shift the models' initialisation."""
    if not gan.vgg_loss:
        return None
    if weights_path is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_VGG_SEED)
            return VGGLoss(VGG19Features(None, gan.vgg_input_norm))
    return VGGLoss(VGG19Features(weights_path, gan.vgg_input_norm))


class OASISTrainer:
    """Trainer protocol of ``gan_core.train.loop`` for OASIS and its Chapter-4 ablations (see module doc)."""

    def __init__(self, cfg: OASISConfig | SemanticGANConfig, data: SemanticDataset, run: OASISRunConfig,
                 seed: int = 0, device: torch.device | str = "cpu", dist_info: DistInfo | None = None,
                 vgg_weights: str | None = None):
        gan = cfg if isinstance(cfg, SemanticGANConfig) else SemanticGANConfig(oasis=cfg)
        cfg = gan.oasis
        if tuple(data.cfg.size) != tuple(cfg.output_size):
            raise ConfigError(f"dataset size {tuple(data.cfg.size)} differs from the generator output "
                              f"{cfg.output_size} (crop_size / aspect_ratio)")
        if data.cfg.semantic_nc != cfg.semantic_nc:
            raise ConfigError(f"dataset semantic_nc {data.cfg.semantic_nc} != model semantic_nc {cfg.semantic_nc}")
        if gan.uses_encoder and run.noise_mode != "image":
            raise ConfigError(f"noise_mode {run.noise_mode!r}: the SPADE+ encoder variant samples one z vector per "
                              "image at test time; use 'image'")
        self.gan, self.cfg, self.run, self.data, self.seed = gan, cfg, run, data, int(seed)
        self.dist = dist_info or DistInfo()
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if run.channels_last else torch.contiguous_format

        n = cfg.semantic_nc
        G = build_generator(gan, n).to(self.device, memory_format=self.memory_format)
        D = build_discriminator(gan, n)
        self.plain_d = (D.num_scales == 1 and isinstance(D.nets[0], OASISDiscriminator)
                        and gan.adversarial_loss == "n_plus_1" and not gan.feature_matching)
        if self.plain_d:
            D = D.nets[0]  # official OASIS D keys (module doc)
        D = D.to(self.device, memory_format=self.memory_format)
        self.loss = SemanticGANLoss(gan, build_vgg_loss(gan, vgg_weights))
        if self.loss.vgg is not None:
            self.loss.vgg.to(self.device)
        self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        if self.dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            if self.device.type == "cuda":
                G = nn.SyncBatchNorm.convert_sync_batchnorm(G)
            ids = [self.device.index] if self.device.type == "cuda" else None
            # broadcast_buffers=False: SN u/v are updated inside every forward; each rank keeps its own.
            G = DDP(G, device_ids=ids, broadcast_buffers=False)
            D = DDP(D, device_ids=ids, broadcast_buffers=False)
        self.G, self.D = G, D
        lr_g, lr_d, betas = self.optimiser_settings(gan)
        self.opt_G = torch.optim.Adam(G.parameters(), lr=lr_g, betas=betas)
        self.opt_D = torch.optim.Adam(D.parameters(), lr=lr_d, betas=betas)
        g_mod = _unwrap(G)
        self._ema_pairs = [(e, g) for e, g in zip(list(self.G_ema.parameters()) + list(self.G_ema.buffers()),
                                                   list(g_mod.parameters()) + list(g_mod.buffers()))]
        self._ema_float = [p for p in self._ema_pairs if p[0].is_floating_point()]
        self._ema_other = [p for p in self._ema_pairs if not p[0].is_floating_point()]

        if cfg.batch_size % self.dist.world_size:
            raise ConfigError(f"batch_size {cfg.batch_size} (global) is not divisible by world_size "
                              f"{self.dist.world_size}")
        self.rank_batch = cfg.batch_size // self.dist.world_size
        self.sampler = ResumableStreamSampler(len(data), self.rank_batch, self.seed, self.dist.rank,
                                              self.dist.world_size, flip=data.cfg.flip)
        self._batches = None
        self._next = None  # iteration the open batch iterator serves next

    @staticmethod
    def optimiser_settings(gan: SemanticGANConfig) -> tuple[float, float, tuple[float, float]]:
        """(lr_G, lr_D, Adam betas): SPADE TTUR for the SPADE+ G with a PatchGAN, OASIS otherwise (module doc)."""
        if gan.generator == "spade_plus" and gan.discriminator != "oasis_unet":
            return gan.spade.lr_g, gan.spade.lr_d, tuple(gan.spade.betas)
        return gan.oasis.lr_g, gan.oasis.lr_d, tuple(gan.oasis.betas)

    # ------------------------------------------------------------------------------------------
    @property
    def batches_per_epoch(self) -> int:
        return self.sampler.batches_per_epoch

    def _autocast(self):
        if not self.run.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _loader(self, sampler) -> DataLoader:
        return DataLoader(self.data, batch_size=self.rank_batch, sampler=sampler, drop_last=True,
                          num_workers=self.run.num_workers, pin_memory=self.device.type == "cuda")

    def _batch(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(real images, label indices, one-hot labels) of ``iteration`` on the device."""
        epoch, pos = divmod(iteration, self.batches_per_epoch)
        if self._batches is None or self._next != iteration:
            self.sampler.set_epoch(epoch, pos)
            self._batches = iter(self._loader(self.sampler))
        try:
            batch = next(self._batches)
        except StopIteration:  # cannot happen with the divmod above; kept as a guard
            self._batches = None
            return self._batch(iteration)
        self._next = iteration + 1
        if pos == self.batches_per_epoch - 1:
            self._batches = None  # the next iteration opens the next epoch
        image = batch["image"].to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        label = batch["label"].to(self.device, non_blocking=True)
        return image, label, one_hot(label, self.cfg.semantic_nc)

    def _generator(self, iteration: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(mix_seed(self.seed, self.dist.rank, iteration))

    def _d(self, image: torch.Tensor, oh: torch.Tensor) -> DOutput:
        """D's output as a DOutput (the bare OASIS U-Net does not see the label map)."""
        if self.plain_d:
            return DOutput([self.D(image)], [[]])
        return self.D(image, oh)

    def _fake(self, oh: torch.Tensor, real: torch.Tensor, mode: str, gen: torch.Generator, posterior: bool = False):
        """G(t) for a training step: 3D noise of ``mode`` from ``gen``, or, with the SPADE+ encoder, z from the
        posterior of the real images (module doc). ``posterior``: also (mu, logvar) (None without encoder)."""
        if self.gan.uses_encoder:
            fake, mu, logvar = self.G(oh, noise_mode=mode, generator=gen, image=real, return_posterior=True)
        else:
            fake, mu, logvar = self.G(oh, noise_mode=mode, generator=gen), None, None
        return (fake, mu, logvar) if posterior else fake

    def train_step(self, iteration: int) -> dict[str, float]:
        gan = self.gan
        real, label, oh = self._batch(iteration)
        gen = self._generator(iteration)
        mode = pick_noise_mode(gan, gen)  # appendix Table 10; one draw per step only for "mix"
        # --- 1. generator step (Eq. 4.5; hinge / FM / VGG for the ablations) ---------------------
        with record_function("oasis.G_step"):
            self.D.requires_grad_(False)
            with self._autocast():
                fake, mu, logvar = self._fake(oh, real, mode, gen, posterior=True)
                d_real = None
                if self.loss.needs_real_in_g_step:
                    with torch.no_grad():
                        d_real = self._d(real, oh)
                g_terms = self.loss.generator(self._d(fake, oh), label, fake=fake, real=real, d_real=d_real,
                                              mu=mu, logvar=logvar)
            self.opt_G.zero_grad(set_to_none=True)
            g_terms["G_total"].backward()
            self.opt_G.step()
            self.D.requires_grad_(True)
        # --- 2. discriminator step (Eq. 4.2 + LabelMix Eq. 4.4, or CutMix / no mixing) -------------
        with record_function("oasis.D_step"):
            with self._autocast():
                with torch.no_grad():
                    fake = self._fake(oh, real, mode, gen)
                fake = fake.contiguous(memory_format=self.memory_format)
                d_fake = self._d(fake, oh)
                d_real = self._d(real, oh)
                d_mixed = mask = None
                if gan.mixing != "none" and gan.lambda_mixing > 0:
                    per_image = gan.mixing_per_image or self.cfg.labelmix_draw == "image"
                    mask = mixing_mask(oh, gan.mixing, per_image=per_image, generator=gen)
                    d_mixed = self._d(labelmix(real, fake, mask), oh)
                d_terms = self.loss.discriminator(d_real, d_fake, label, d_mixed, mask)
            self.opt_D.zero_grad(set_to_none=True)
            d_terms["D_total"].backward()
            self.opt_D.step()
        # --- 3. EMA ------------------------------------------------------------------------------
        with record_function("oasis.ema"):
            self._ema_update()
        terms = {k: v for k, v in g_terms.items() if k != "G_total" or len(g_terms) > 2}
        terms.update(D_fake=d_terms["D_fake"], D_real=d_terms["D_real"],
                     D_labelmix=d_terms.get("D_mixing", torch.zeros((), device=self.device)),
                     D_total=d_terms["D_total"])
        values = torch.stack([t.detach().float() for t in terms.values()]).tolist()
        return dict(zip(terms, values))

    @torch.no_grad()
    def _ema_update(self) -> None:
        decay = float(self.gan.ema_decay)
        if self._ema_float:
            torch._foreach_lerp_([e for e, _ in self._ema_float], [g.to(e.dtype) for e, g in self._ema_float],
                                 1.0 - decay)
        for e, g in self._ema_other:
            e.copy_(g)

    # ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def refreshed_ema(self, n_batches: int | None = None) -> nn.Module:
        """A copy of the EMA generator whose batch-norm statistics were re-estimated in train mode on up
        to ``n_batches`` (default ``run.bn_refresh_batches``) training batches (fixed order, no flip,
        noise from a seed of its own); returned in eval mode."""
        n = self.run.bn_refresh_batches if n_batches is None else int(n_batches)
        ema = copy.deepcopy(self.G_ema)
        if n == 0:
            return ema.eval()
        ema.train()
        gen = torch.Generator(device=self.device).manual_seed(mix_seed(self.seed, REFRESH_STREAM))
        loader = DataLoader(self.data, batch_size=self.rank_batch, shuffle=False, drop_last=False,
                            num_workers=self.run.num_workers)
        with self._autocast():
            for i, batch in enumerate(loader):
                if i >= n:
                    break
                oh = one_hot(batch["label"].to(self.device), self.cfg.semantic_nc)
                ema(oh, noise_mode=self.run.noise_mode, generator=gen)
        return ema.eval().requires_grad_(False)

    def state_dict(self) -> dict[str, Any]:
        return {"G": _unwrap(self.G).state_dict(), "D": _unwrap(self.D).state_dict(),
                "G_ema": self.G_ema.state_dict(), "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _unwrap(self.G).load_state_dict(state["G"])
        _unwrap(self.D).load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self._batches = None


@torch.no_grad()
def generate_for_labels(generator: nn.Module, labels: torch.Tensor, keys: list[int], seed: int,
                        noise_mode: str = "image") -> torch.Tensor:
    """Images (B, 3, H, W) in [-1, 1] for label indices (B, H, W); image i's noise comes from a generator
    seeded with (seed, keys[i]), so the result does not depend on the batch composition. The SPADE+ encoder
    variant draws its z ~ N(0, I) from the same per-image generator (no image is encoded at test time)."""
    device = next(generator.parameters()).device
    oh = one_hot(labels.to(device), generator.cfg.semantic_nc)
    out = []
    for i, key in enumerate(keys):
        g = torch.Generator(device=device).manual_seed(mix_seed(seed, key))
        out.append(generator(oh[i:i + 1], noise_mode=noise_mode, generator=g).float().clamp(-1, 1))
    return torch.cat(out).cpu()
