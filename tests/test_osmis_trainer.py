"""OSMIS trainer: exact resume, input validation, and the train/sample command line (tiny, CPU)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.errors import ConfigError, DataError
from gan_core.nets.osmis_config import OSMISConfig
from gan_core.train import osmis_cli
from gan_core.train.loop import LoopConfig, run_training
from gan_core.train.osmis_trainer import OSMISTrainer
from gan_core.utils.images import write_mask

TINY = dict(ch_G=4, ch_D=4, batch_size=2, bernoulli_warmup=3)


def _pair(h: int = 48, w: int = 80):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.int64)
    mask[h // 4: h // 2, w // 4: w // 2] = 1
    mask[h // 2:, w // 2:] = 2
    return img, mask


def _flat_state(state, prefix=""):
    out = {}
    for k, v in state.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat_state(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out.update(_flat_state(dict(enumerate(v)), key + "."))
        else:
            out[key] = v
    return out


@pytest.mark.parametrize("with_mask", [True, False])
def test_resume_equals_uninterrupted(tmp_path, with_mask):
    torch.set_num_threads(1)
    img, mask = _pair()
    mask = mask if with_mask else None
    cfg = OSMISConfig(**TINY)

    def build(seed):
        torch.manual_seed(seed)
        return OSMISTrainer(cfg, img, mask)

    full = build(0)
    run_training(full, tmp_path / "a", LoopConfig(iterations=6, checkpoint_every=3, log_every=3, progress=False))
    first = build(0)
    run_training(first, tmp_path / "b", LoopConfig(iterations=3, checkpoint_every=3, log_every=3, progress=False))
    resumed = build(123)  # different init: everything must come from the checkpoint
    n = run_training(resumed, tmp_path / "b", LoopConfig(iterations=6, checkpoint_every=3, log_every=3,
                                                         progress=False))
    assert n == 3
    a, b = _flat_state(full.state_dict()), _flat_state(resumed.state_dict())
    assert a.keys() == b.keys()
    n_tensors = 0
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
            n_tensors += 1
        else:
            assert a[key] == b[key], key
    assert n_tensors > 50
    assert {"G", "D", "G_ema", "opt_G", "opt_D"} <= set(full.state_dict())
    # the EMA differs from G after training
    g, e = full.G.state_dict(), full.G_ema.state_dict()
    assert any(not torch.equal(g[k], e[k]) for k in g if k.endswith("weight_orig"))


def test_trainer_derives_and_validates_mask_classes():
    img, mask = _pair()
    tr = OSMISTrainer(OSMISConfig(**TINY), img, mask)
    assert tr.cfg.num_mask_classes == 3 and tr.real_mask.shape == (1, 3, 48, 80)
    assert torch.equal(tr.real_mask.sum(1), torch.ones(1, 48, 80))
    with pytest.raises(DataError, match="mask id 2 >= configured num_mask_classes=2"):
        OSMISTrainer(OSMISConfig(num_mask_classes=2, **TINY), img, mask, mask_source="m.png")
    with pytest.raises(DataError, match="empty"):
        OSMISTrainer(OSMISConfig(**TINY), img, np.zeros_like(mask))
    with pytest.raises(ConfigError):
        OSMISTrainer(OSMISConfig(num_mask_classes=3, **TINY), img, None)
    small = np.zeros((40, 60, 3), np.uint8)
    with pytest.raises(DataError, match="small.png"):
        OSMISTrainer(OSMISConfig(**TINY), small, None, source="small.png")


def test_sample_shapes_and_determinism():
    img, mask = _pair()
    torch.manual_seed(0)
    tr = OSMISTrainer(OSMISConfig(**TINY), img, mask)
    tr.train_step(0)
    x1, m1 = tr.sample(5, seed=7, batch=2)
    x2, m2 = tr.sample(5, seed=7, batch=5)
    assert x1.shape == (5, 3, 48, 80) and m1.shape == (5, 48, 80) and m1.dtype == torch.int64
    assert x1.min() >= -1 and x1.max() <= 1 and x1.device.type == "cpu"
    assert torch.allclose(x1, x2, atol=1e-5) and torch.equal(m1, m2)
    assert int(m1.max()) < 3


def test_cli_train_and_sample(tmp_path):
    img, mask = _pair(96, 160)
    Image.fromarray(img).save(tmp_path / "frame.png")
    write_mask(tmp_path / "frame_mask.png", mask)
    run = tmp_path / "run"
    params = {"image_size": [48, 80], **TINY, "iterations": 4, "checkpoint_every": 2, "log_every": 2}
    rc = osmis_cli.main(["train", "--image", str(tmp_path / "frame.png"), "--mask", str(tmp_path / "frame_mask.png"),
                         "--out", str(run), "--params", json.dumps(params), "--seed", "3", "--device", "cpu"])
    assert rc == 0
    done = json.loads((run / "done.json").read_text())
    assert done["iterations"] == 4 and done["provenance"]["seed"] == 3
    resolved = json.loads((run / "config.json").read_text())
    assert resolved["osmis"]["num_mask_classes"] == 3 and resolved["architecture"]["resolution"] == [48, 80]
    assert (run / "generator_ema.pt").is_file() and (run / "checkpoint.pt").is_file()
    out = tmp_path / "samples"
    rc = osmis_cli.main(["sample", "--run", str(run), "--n", "3", "--seed", "0", "--out", str(out),
                         "--device", "cpu"])
    assert rc == 0
    listing = json.loads((out / "samples.json").read_text())
    assert listing["n"] == 3 and listing["samples"][2] == {"image": "images/002.png", "mask": "masks/002.png"}
    im = Image.open(out / "images" / "000.png")
    assert im.size == (80, 48) and im.mode == "RGB"
    mk = Image.open(out / "masks" / "001.png")
    assert mk.mode == "P" and np.asarray(mk).max() < 3


def test_cli_rejects_small_image_naming_file(tmp_path, capsys):
    Image.fromarray(np.zeros((40, 64, 3), np.uint8)).save(tmp_path / "tiny.png")
    rc = osmis_cli.main(["train", "--image", str(tmp_path / "tiny.png"), "--out", str(tmp_path / "r"),
                         "--device", "cpu"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "tiny.png" in err and "smaller than the minimum" in err
    rc = osmis_cli.main(["train", "--image", str(tmp_path / "tiny.png"), "--out", str(tmp_path / "r"),
                         "--params", '{"bogus": 1}'])
    assert rc == 2 and "bogus" in capsys.readouterr().err
