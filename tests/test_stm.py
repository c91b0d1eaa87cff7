"""STM downstream system: official weight layout, memory read and aggregation maths, test-time protocol and
memory injection, error handling, tiny training resume, CLI smoke."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

from downstream.stm.config import STMConfig
from downstream.stm.inference import (expected_memory_sizes, pad_amounts, run_video)
from downstream.stm.model import architecture_of, load_stm_weights, memory_read, soft_aggregate
from downstream.stm.sequence import channel_lut, segment_sequence
from downstream.stm.train_tiny import PairTrainer, build_model, train_videos
from gan_core.errors import ConfigError, DataError
from gan_core.train.loop import LoopConfig, run_training
from gan_core.utils.dataclass_config import from_dict
from gan_core.utils.images import write_image, write_mask

TINY = {"backbone": "resnet18", "width": 0.25}


# ----------------------------------------------------------------------------------- official layout
def official_state_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the official STM, from the reference notes §2.1: two encoders made of torchvision
    ResNet-50 conv1/bn1/layer1-3 renamed res2-res4 (keys enumerated from torchvision itself), Encoder_M's
    conv1_m/conv1_o (1->64, 7x7), mean/std buffers (1,3,1,1), Key 1024->128 and Value 1024->512 (3x3, bias),
    Decoder(256): convFM 1024->256, ResMM, RF3 (skip 512), RF2 (skip 256), pred2 256->2 (3x3 convs with bias;
    a residual block = conv1 + conv2, a refine block = convFS + ResFS + ResMM)."""
    rename = {"layer1": "res2", "layer2": "res3", "layer3": "res4"}
    trunk = {}
    for k, v in torchvision.models.resnet50(weights=None).state_dict().items():
        head, rest = k.split(".", 1)
        if head in ("conv1", "bn1"):
            trunk[k] = tuple(v.shape)
        elif head in rename:
            trunk[f"{rename[head]}.{rest}"] = tuple(v.shape)
    shapes = {}
    for enc in ("Encoder_M", "Encoder_Q"):
        shapes.update({f"{enc}.{k}": s for k, s in trunk.items()})
        shapes[f"{enc}.mean"] = shapes[f"{enc}.std"] = (1, 3, 1, 1)
    shapes["Encoder_M.conv1_m.weight"] = shapes["Encoder_M.conv1_o.weight"] = (64, 1, 7, 7)

    def conv(name, c_in, c_out):
        shapes[f"{name}.weight"] = (c_out, c_in, 3, 3)
        shapes[f"{name}.bias"] = (c_out,)

    for kv in ("KV_M_r4", "KV_Q_r4"):
        conv(f"{kv}.Key", 1024, 128)
        conv(f"{kv}.Value", 1024, 512)
    conv("Decoder.convFM", 1024, 256)
    for blk in ("Decoder.ResMM", "Decoder.RF3.ResFS", "Decoder.RF3.ResMM", "Decoder.RF2.ResFS", "Decoder.RF2.ResMM"):
        conv(f"{blk}.conv1", 256, 256)
        conv(f"{blk}.conv2", 256, 256)
    conv("Decoder.RF3.convFS", 512, 256)
    conv("Decoder.RF2.convFS", 256, 256)
    conv("Decoder.pred2", 256, 2)
    return shapes


def test_official_layout_loads_strictly(tmp_path):
    shapes = official_state_shapes()
    # reference notes §2.1: 558 keys; the count includes BatchNorm running stats and num_batches_tracked
    assert len(shapes) == 558
    assert sum("num_batches_tracked" in k for k in shapes) == 86
    n_params = sum(math.prod(s) for k, s in shapes.items()
                   if not k.endswith(("running_mean", "running_var", "num_batches_tracked", ".mean", ".std")))
    assert round(n_params / 1e6, 1) == 38.9  # reference notes §2.1
    state = {f"module.{k}": torch.full(s, float(i % 97)) if "num_batches" not in k else torch.tensor(i)
             for i, (k, s) in enumerate(shapes.items())}
    torch.save(state, tmp_path / "STM_weights.pth")
    model = load_stm_weights(tmp_path / "STM_weights.pth")
    assert (model.backbone, model.key_dim, model.value_dim, model.decoder_dim) == ("resnet50", 128, 512, 256)
    assert sum(p.numel() for p in model.parameters()) == n_params
    loaded = model.state_dict()
    assert set(loaded) == set(shapes)
    for i, k in enumerate(shapes):
        assert float(loaded[k].flatten()[0]) == float(i % 97 if "num_batches" not in k else i), k


def test_loader_prefix_buffers_and_bad_layout(tmp_path):
    state = build_model(STMConfig(**TINY)).state_dict()
    # without "module." and without num_batches_tracked entries (older BatchNorm): loads strictly
    torch.save({k: v for k, v in state.items() if "num_batches" not in k}, tmp_path / "old.pth")
    assert load_stm_weights(tmp_path / "old.pth").key_dim == 32
    # a wrong layout is a DataError naming the file
    bad = {f"module.{k}": v for k, v in state.items() if k != "Decoder.pred2.bias"}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(DataError, match="bad.pth"):
        load_stm_weights(tmp_path / "bad.pth")
    torch.save({"Decoder.pred2.bias": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(DataError, match="not an STM state dict"):
        load_stm_weights(tmp_path / "other.pth")


def test_tiny_architecture_round_trip():
    model = build_model(STMConfig(**TINY))
    assert architecture_of(model.state_dict()) == {"backbone": "resnet18", "key_dim": 32, "value_dim": 128,
                                                   "decoder_dim": 64}


# ----------------------------------------------------------------------------------- maths
def test_memory_read_equals_scaled_dot_product_attention():
    g = torch.Generator().manual_seed(0)
    n, ck, cv, t, h, w = 2, 8, 5, 3, 4, 6
    mk, mv = torch.randn(n, ck, t, h, w, generator=g), torch.randn(n, cv, t, h, w, generator=g)
    qk = torch.randn(n, ck, h, w, generator=g)
    out = memory_read(mk, mv, qk)
    # second source: torch's attention with memory locations T*H*W as the key/value sequence
    ref = F.scaled_dot_product_attention(qk.flatten(2).transpose(1, 2), mk.flatten(2).transpose(1, 2),
                                         mv.flatten(2).transpose(1, 2), scale=1 / math.sqrt(ck))
    torch.testing.assert_close(out, ref.transpose(1, 2).reshape(n, cv, h, w), rtol=1e-5, atol=1e-5)


def test_soft_aggregation_by_hand():
    ps = torch.tensor([0.5, 0.2]).view(2, 1, 1)
    logit = soft_aggregate(ps)[:, 0, 0]
    eps = 1e-7
    expected = [math.log(0.4 / 0.6), 0.0, math.log(0.25)] + [math.log(eps / (1 - eps))] * 8  # bg = 0.5 * 0.8
    torch.testing.assert_close(logit, torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_padding_to_multiple_of_16():
    assert pad_amounts(480, 854) == (5, 5, 0, 0)  # 480x854 -> 480x864 (reference notes §2.2)
    assert pad_amounts(72, 100) == (6, 6, 4, 4)
    assert pad_amounts(33, 17) == (7, 8, 7, 8)  # the extra pixel goes right/bottom


def test_channel_relabelling():
    lut = channel_lut([2, 5], "2017")
    assert lut[[0, 1, 2, 3, 5, 255]].tolist() == [0, 0, 1, 0, 2, 0]
    assert channel_lut([1], "2016")[[0, 1, 7, 254, 255]].tolist() == [0, 1, 1, 1, 0]


# ----------------------------------------------------------------------------------- protocol
@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_model(STMConfig(**TINY)).eval()


def _video(t=5, h=48, w=64):
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (t, 3, h, w), dtype=torch.uint8, generator=g)
    first = torch.zeros(h, w, dtype=torch.long)
    first[6:20, 6:30] = 1
    first[26:44, 34:60] = 2
    first[0:2, :] = 255  # void belongs to no object
    return frames, first


def test_run_video_labels(tiny_model):
    frames, first = _video()
    res = run_video(tiny_model, frames, first, 2, mem_every=5)
    assert res.labels.shape == (5, 48, 64) and res.labels.dtype == torch.int64
    assert set(res.labels.unique().tolist()) <= {0, 1, 2}
    expected0 = first.clone()
    expected0[first == 255] = 0
    assert torch.equal(res.labels[0], expected0)
    # a working resolution different from the frame size still returns native-size labels
    res2 = run_video(tiny_model, frames, first, 2, resolution=(32, 48))
    assert res2.labels.shape == (5, 48, 64)
    res3 = run_video(tiny_model, frames, first, 2, bf16=True)  # optional bf16 autocast (memory read in fp32)
    assert res3.labels.shape == (5, 48, 64) and set(res3.labels.unique().tolist()) <= {0, 1, 2}
    with pytest.raises(ConfigError, match="1..10 objects"):
        run_video(tiny_model, frames, first, 11)


def test_memory_grows_with_schedule_and_synthetic_pairs(tiny_model):
    frames, first = _video(t=5)
    plain = run_video(tiny_model, frames, first, 2, mem_every=2)
    # by hand: frame t reads {s in (0, 2, 4): s <= t-2} plus frame t-1
    assert plain.memory_sizes == [1, 2, 2, 3] == expected_memory_sizes(5, 2)
    assert expected_memory_sizes(12, 5) == [1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3]
    g = torch.Generator().manual_seed(2)
    syn_images = torch.randint(0, 256, (4, 3, 40, 60), dtype=torch.uint8, generator=g)  # other size: resized
    syn_labels = torch.zeros(4, 40, 60, dtype=torch.long)
    syn_labels[:, 5:20, 5:25] = 1  # object 2 absent: a zero channel
    inj = run_video(tiny_model, frames, first, 2, mem_every=2, synthetic=(syn_images, syn_labels), max_synthetic=3,
                    seed=7)
    assert inj.n_synthetic == 3 and len(set(inj.synthetic_indices)) == 3
    assert [a - b for a, b in zip(inj.memory_sizes, plain.memory_sizes)] == [3, 3, 3, 3]
    small_pool = run_video(tiny_model, frames, first, 2, mem_every=2, synthetic=(syn_images[:2], syn_labels[:2]),
                           max_synthetic=10)
    assert small_pool.n_synthetic == 2 and small_pool.memory_sizes == [3, 4, 4, 5]
    # the same seed draws the same pairs
    again = run_video(tiny_model, frames, first, 2, mem_every=2, synthetic=(syn_images, syn_labels), max_synthetic=3,
                      seed=7)
    assert again.synthetic_indices == inj.synthetic_indices and torch.equal(again.labels, inj.labels)


# ----------------------------------------------------------------------------------- DAVIS-format data
def _build_davis(root: Path, h=32, w=48, n_frames=5):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:h, :w]
    for s, seq in enumerate(["seqa", "seqb"]):
        for t in range(n_frames):
            lab = np.zeros((h, w), np.int64)
            lab[(yy - 12) ** 2 + (xx - 14 - t) ** 2 <= 36] = 1
            if s == 0:
                lab[(yy - 22) ** 2 + (xx - 34 + t) ** 2 <= 25] = 2
                if t >= 2:
                    lab[26:30, 2:8] = 3  # appears after frame 0: not tracked
            img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
            img[lab == 1] = [220, 40, 40]
            img[lab == 2] = [40, 40, 220]
            img[lab == 3] = [40, 220, 40]
            write_image(root / "JPEGImages" / "480p" / seq / f"{t:05d}.jpg", img)
            write_mask(root / "Annotations" / "480p" / seq / f"{t:05d}.png", lab)
    (root / "train.txt").write_text("seqa\nseqb\n")
    syn = root / "syn"
    kept = []
    for i in range(3):
        lab = np.zeros((24, 40), np.int64)
        lab[4 + i : 12 + i, 6:16] = 1
        lab[14:20, 24 + i : 32 + i] = 2
        img = np.where(lab[..., None] > 0, 200, 30).astype(np.uint8).repeat(3, axis=2)
        write_image(syn / f"img{i}.png", img)
        write_mask(syn / f"mask{i}.png", lab)
        kept.append({"image": f"img{i}.png", "mask": f"mask{i}.png"})
    (syn / "manifest.json").write_text(json.dumps({"kept": kept}))


def test_more_than_ten_objects_is_a_data_error(tmp_path, tiny_model):
    root = tmp_path / "DAVIS"
    lab = np.zeros((32, 48), np.int64)
    for i in range(11):
        lab[2 * i : 2 * i + 2, :4] = i + 1
    write_image(root / "JPEGImages" / "480p" / "many" / "00000.jpg", np.zeros((32, 48, 3), np.uint8))
    write_image(root / "JPEGImages" / "480p" / "many" / "00001.jpg", np.zeros((32, 48, 3), np.uint8))
    write_mask(root / "Annotations" / "480p" / "many" / "00000.png", lab)
    with pytest.raises(DataError, match="11 objects") as err:
        segment_sequence(tiny_model, root, "many", "2017", None, tmp_path / "out", STMConfig(**TINY))
    assert err.value.path == root / "Annotations" / "480p" / "many" / "00000.png"
    # DAVIS-16 mode merges the objects into one: fine
    meta = segment_sequence(tiny_model, root, "many", "2016", None, tmp_path / "out16", STMConfig(**TINY))
    assert meta["objects"] == [1]


# ----------------------------------------------------------------------------------- tiny training
def test_tiny_training_resume_equals_uninterrupted(tmp_path):
    root = tmp_path / "DAVIS"
    _build_davis(root)
    cfg = from_dict(STMConfig, {**TINY, "train_batch": 1, "train_lr": 1e-3, "train_max_skip": 2})
    videos = train_videos(root, ["seqa", "seqb"])
    torch.manual_seed(0)
    init = build_model(cfg).state_dict()

    def trainer():
        model = build_model(cfg)
        model.load_state_dict(init)
        return PairTrainer(model, cfg, videos, seed=3)

    loop = dict(checkpoint_every=2, log_every=1, seed=3, progress=False)
    a = trainer()
    run_training(a, tmp_path / "a", LoopConfig(iterations=4, **loop))
    b = trainer()
    run_training(b, tmp_path / "b", LoopConfig(iterations=2, **loop))  # "killed" after 2 iterations
    b = trainer()
    assert run_training(b, tmp_path / "b", LoopConfig(iterations=4, **loop)) == 2
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert not torch.equal(sa["Decoder.pred2.weight"], init["Decoder.pred2.weight"])  # training changed weights
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ----------------------------------------------------------------------------------- CLI
def test_cli_train_tiny_and_run(tmp_path, capsys):
    from downstream.stm_cli import main

    root = tmp_path / "DAVIS"
    _build_davis(root)
    params = json.dumps({**TINY, "train_iterations": 2, "train_batch": 1, "checkpoint_every": 1, "log_every": 1})
    assert main(["train-tiny", "--davis-root", str(root), "--split-file", str(root / "train.txt"),
                 "--out", str(tmp_path / "tiny"), "--params", params, "--seed", "0", "--device", "cpu"]) == 0
    weights = tmp_path / "tiny" / "stm_tiny.pth"
    assert load_stm_weights(weights).backbone == "resnet18"

    out = tmp_path / "res17" / "seqa"
    assert main(["run", "--davis-root", str(root), "--sequence", "seqa", "--mode", "2017", "--weights", str(weights),
                 "--synthetic-manifest", str(root / "syn" / "manifest.json"), "--out", str(out),
                 "--params", "{}", "--seed", "1", "--device", "cpu"]) == 0
    done = json.loads((out / "done.json").read_text())
    assert done["objects"] == [1, 2] and done["untracked_objects"] == [3]
    assert done["synthetic_pool"] == 3 and done["synthetic_used"] == 3 and done["synthetic_requested"] == 10
    assert done["memory_sizes"] == [3 + m for m in expected_memory_sizes(5, 5)]
    assert "config_hash" in done["provenance"]
    preds = sorted((out / "predictions").iterdir())
    assert [p.name for p in preds] == [f"{t:05d}.png" for t in range(5)]
    img = Image.open(preds[3])
    assert img.mode == "P" and set(np.unique(np.asarray(img)).tolist()) <= {0, 1, 2}

    out16 = tmp_path / "res16" / "seqb"
    assert main(["run", "--davis-root", str(root), "--sequence", "seqb", "--mode", "2016", "--weights", str(weights),
                 "--synthetic-manifest", "none", "--out", str(out16), "--device", "cpu"]) == 0
    assert json.loads((out16 / "done.json").read_text())["synthetic_used"] == 0

    capsys.readouterr()
    assert main(["run", "--davis-root", str(root), "--sequence", "seqa", "--mode", "2017",
                 "--weights", str(tmp_path / "absent.pth"), "--synthetic-manifest", "none",
                 "--out", str(tmp_path / "x"), "--device", "cpu"]) == 2
    assert "fetch_stm_weights" in capsys.readouterr().err


def test_standard_memory_pairs_augment_frame0_or_the_pool():
    """STM 'standard' rows: extra memory pairs are flip/zoom/rotation copies, image and mask aligned."""
    from downstream.stm.sequence import standard_memory_pairs

    h, w = 32, 48
    labels = np.zeros((h, w), np.int64)
    labels[8:20, 10:30] = 1
    image = np.zeros((h, w, 3), np.uint8)
    image[labels == 1] = 200  # the image encodes its mask, so alignment can be checked after warping
    imgs, labs = standard_memory_pairs(None, image, labels, n=6, seed=3)
    assert imgs.shape == (6, 3, h, w) and imgs.dtype == torch.uint8 and labs.shape == (6, h, w)
    assert set(labs.unique().tolist()) <= {0, 1}
    agree = ((imgs[:, 0] > 100) == (labs == 1)).float().mean()
    assert agree > 0.97
    assert not all(torch.equal(labs[i], torch.from_numpy(labels)) for i in range(6))  # really augmented
    again = standard_memory_pairs(None, image, labels, n=6, seed=3)
    assert torch.equal(again[0], imgs) and torch.equal(again[1], labs)  # seeded
    pool = (imgs[:3], labs[:3])
    p_imgs, p_labs = standard_memory_pairs(pool, image, labels, n=10, seed=0)
    assert len(p_imgs) == 3  # never more pairs than the pool holds
