"""OASIS training on CPU at a tiny size: N+1 discriminator output, 3D-noise multi-modality, EMA + BN
refresh, exact resume after a kill, and the CLI train/sample/export round trip."""
import json

import numpy as np
import pytest
import torch

from gan_core.data.semantic import SemanticDataConfig, SemanticDataset
from gan_core.nets.oasis_config import OASISConfig
from gan_core.train.loop import LoopConfig, run_training, seed_everything
from gan_core.train.oasis_cli import dataset_for, main as oasis_main
from gan_core.train.oasis_trainer import OASISRunConfig, OASISTrainer, generate_for_labels
from kill_resume import train_until_killed
from oasis_tiny import TINY

pytestmark = pytest.mark.usefixtures("one_thread")


def make_trainer(root, seed=0, **run):
    cfg = OASISConfig(**TINY)
    data = SemanticDataset(root, "train", SemanticDataConfig(semantic_nc=7, size=cfg.output_size))
    seed_everything(seed)
    return OASISTrainer(cfg, data, OASISRunConfig(**{"bn_refresh_batches": 2, **run}), seed=seed)


def test_discriminator_has_n_plus_one_outputs_and_step_logs(ade_root):
    tr = make_trainer(ade_root)
    real, label, oh = tr._batch(0)
    assert tr.D(real).shape == (2, 7 + 1, 32, 32)
    losses = tr.train_step(0)
    assert set(losses) == {"G_adv", "D_fake", "D_real", "D_labelmix", "D_total"}
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert losses["D_labelmix"] > 0  # lambda_LM = 5 (thesis ADE20K value) -> the term is active


def test_noise_makes_images_differ_for_one_label_map(ade_root):
    tr = make_trainer(ade_root)
    labels = torch.stack([tr.data[0]["label"]] * 2)
    g = tr.G.eval()
    a = generate_for_labels(g, labels, [0, 1], seed=0)
    b = generate_for_labels(g, labels, [0, 0], seed=0)
    # same label map, different z (relative: the untrained G's outputs are small, init gain 0.02)
    assert (a[0] - a[1]).abs().mean() > 0.05 * a.abs().mean()
    assert torch.equal(b[0], b[1]) and torch.equal(a[0], b[0])  # same (seed, key) -> same image


def test_ema_update_and_bn_refresh(ade_root):
    tr = make_trainer(ade_root, bn_refresh_batches=2)
    ema0 = {k: v.clone() for k, v in tr.G_ema.state_dict().items()}
    tr.train_step(0)
    g, ema = tr.G.state_dict(), tr.G_ema.state_dict()
    d = tr.cfg.ema_decay
    key = "conv_img.weight"
    assert torch.allclose(ema[key], d * ema0[key] + (1 - d) * g[key], atol=1e-7)
    assert not torch.equal(ema[key], g[key])
    bn = next(k for k in ema if k.endswith("first_norm.running_mean"))
    assert torch.allclose(ema[bn], d * ema0[bn] + (1 - d) * g[bn], atol=1e-7)  # buffers averaged too (official)
    before = {k: v.clone() for k, v in ema.items()}
    fresh = tr.refreshed_ema()
    assert not fresh.training
    assert all(torch.equal(before[k], v) for k, v in tr.G_ema.state_dict().items())  # training EMA untouched
    assert not torch.allclose(fresh.state_dict()[bn], ema[bn])                         # statistics refreshed
    assert torch.equal(tr.refreshed_ema().state_dict()[bn], fresh.state_dict()[bn])   # deterministic
    assert torch.equal(tr.refreshed_ema(0).state_dict()[bn], ema[bn])                 # 0 batches = no refresh


def _state(tr):
    return {**{f"G.{k}": v for k, v in tr.G.state_dict().items()},
            **{f"D.{k}": v for k, v in tr.D.state_dict().items()},
            **{f"E.{k}": v for k, v in tr.G_ema.state_dict().items()}}


def test_killed_and_resumed_run_equals_uninterrupted(ade_root, tmp_path):
    """7 iterations over 2 epochs (3 batches/epoch), checkpoint every 2; the kill lands at iteration 5,
    after the checkpoint of iteration 4, inside the second epoch."""
    loop = LoopConfig(iterations=7, checkpoint_every=2, log_every=1, progress=False)
    full = make_trainer(ade_root)
    run_training(full, tmp_path / "full", loop)

    killed = make_trainer(ade_root)
    train_until_killed(killed, tmp_path / "resumed", loop, kill_at=5)
    assert not (tmp_path / "resumed" / "done.json").exists()
    resumed = make_trainer(ade_root, seed=0)
    with torch.no_grad():  # prove the state comes from the checkpoint, not from the seeded init
        for p in resumed.G.parameters():
            p.add_(1.0)
    assert run_training(resumed, tmp_path / "resumed", loop) == 3
    a, b = _state(full), _state(resumed)
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, diff[:5]
    rows_full = [json.loads(l) for l in (tmp_path / "full" / "train_log.jsonl").read_text().splitlines()]
    rows_res = [json.loads(l) for l in (tmp_path / "resumed" / "train_log.jsonl").read_text().splitlines()]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]
    assert strip(rows_full) == strip(rows_res)


def test_cli_train_sample_export(ade_root, tmp_path):
    params = json.dumps({**TINY, "d_channels": list(TINY["d_channels"]), "iterations": 2, "checkpoint_every": 1,
                         "log_every": 1, "bn_refresh_batches": 1})
    run = tmp_path / "run"
    assert oasis_main(["train", "--dataroot", str(ade_root), "--out", str(run), "--params", params,
                       "--device", "cpu"]) == 0
    assert (run / "generator_ema.pt").is_file() and (run / "done.json").is_file()
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["oasis"]["lr_g"] == 1e-4 and cfg["oasis"]["lr_d"] == 4e-4 and cfg["oasis"]["betas"] == [0.0, 0.999]
    assert cfg["oasis"]["lambda_labelmix"] == 5.0 and cfg["oasis"]["ema_decay"] == 0.9999  # thesis l.1121
    out = tmp_path / "samples"
    assert oasis_main(["sample", "--run", str(run), "--dataroot", str(ade_root), "--out", str(out),
                       "--device", "cpu"]) == 0
    meta = json.loads((out / "samples.json").read_text())
    assert meta["n"] == 2 and sorted(p.name for p in (out / "images").iterdir()) == [
        "ADE_val_00000001.png", "ADE_val_00000002.png"]
    assert oasis_main(["export", "--params", params, "--dataroot", str(ade_root), "--out", str(tmp_path / "real")]) == 0
    assert sorted(p.name for p in (tmp_path / "real" / "images").iterdir()) == sorted(p.name for p in (out / "images").iterdir())
    from PIL import Image
    ds = dataset_for(OASISConfig.from_dict({**TINY, "d_channels": list(TINY["d_channels"])}), ade_root, "validation", False)
    for k, name in enumerate(ds.names()):  # the exported label maps are the loader's, at the generated resolution
        assert (np.asarray(Image.open(tmp_path / "real" / "labels" / f"{name}.png")) == ds.load(k)[1]).all()
    # a bad key in --params is an error naming it
    assert oasis_main(["train", "--dataroot", str(ade_root), "--out", str(tmp_path / "x"),
                       "--params", '{"lr_gg": 1}']) == 2


def test_data_loader_workers_do_not_change_batches(ade_root):
    a, b = make_trainer(ade_root), make_trainer(ade_root, num_workers=2)
    for it in (0, 1, 2, 3):
        ra, la, _ = a._batch(it)
        rb, lb, _ = b._batch(it)
        assert torch.equal(ra, rb) and torch.equal(la, lb)


def test_throughput_benchmark_has_an_oasis_target():
    from gan_core.bench.throughput import BenchConfig, run_benchmark

    row = run_benchmark(BenchConfig(model="oasis", size=(64, 64), iters=1, warmup=0, batch=2, device="cpu", ch=2,
                                    mask_classes=3, threads=1))
    assert row["model"] == "oasis" and row["resolution"] == [64, 64] and row["mask_classes"] == 4
    assert row["img_per_s"] > 0 and abs(row["img_per_s"] - 2 * row["it_per_s"]) < 1e-9
    assert row["peak_memory_bytes"] > 0 and row["ch_D"] == [4, 4, 8, 8, 16, 16]


def test_torchrun_ddp_two_cpu_processes(ade_root, tmp_path):
    """WORLD_SIZE=2 under torchrun (gloo, CPU): DDP training, rank-0 checkpointing, EMA export."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    params = json.dumps({**TINY, "d_channels": list(TINY["d_channels"]), "batch_size": 4, "iterations": 2,
                         "checkpoint_every": 1, "log_every": 1, "bn_refresh_batches": 1})  # global batch 4 = 2 x 2
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "gan_core.train.oasis_cli", "train", "--dataroot", str(ade_root), "--out", str(run),
           "--params", params, "--device", "cpu"]
    res = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["world_size"] == 2
    rows = (run / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(r)["iteration"] for r in rows] == [1, 2]  # one writer (rank 0)
    assert (run / "generator_ema.pt").is_file() and (run / "done.json").is_file()


def test_cli_import_released_checkpoint(ade_root, tmp_path):
    """A released-style generator file (plain state dict, official key layout = ours) becomes a run folder that
    `sample` evaluates like a trained run; a file of another architecture is refused, naming the file."""
    from gan_core.nets.oasis import OASISGenerator

    cfg = OASISConfig(**TINY)
    torch.manual_seed(3)
    gen = OASISGenerator(cfg).eval()
    ckpt = tmp_path / "best_EMA.pth"
    torch.save(gen.state_dict(), ckpt)
    params = json.dumps({**TINY, "d_channels": list(TINY["d_channels"])})
    run = tmp_path / "released"
    assert oasis_main(["import", "--checkpoint", str(ckpt), "--params", params, "--out", str(run)]) == 0
    assert (run / "done.json").is_file()
    loaded = torch.load(run / "generator_ema.pt", weights_only=True)
    assert all(torch.equal(loaded[k], v) for k, v in gen.state_dict().items())
    out = tmp_path / "samples"
    assert oasis_main(["sample", "--run", str(run), "--dataroot", str(ade_root), "--out", str(out),
                       "--device", "cpu"]) == 0
    data = dataset_for(cfg, ade_root, "validation", False)
    labels = torch.stack([data[i]["label"] for i in range(len(data))])
    expected = generate_for_labels(gen, labels, list(range(len(data))), seed=0)  # the sample command's keys
    from gan_core.sample.generate import to_uint8
    from PIL import Image
    got = np.asarray(Image.open(out / "images" / f"{data.names()[0]}.png"))
    assert np.array_equal(got, to_uint8(expected)[0])
    wrong = tmp_path / "wrong.pth"
    torch.save(OASISGenerator(OASISConfig(**{**TINY, "ch_G": 4})).state_dict(), wrong)
    assert oasis_main(["import", "--checkpoint", str(wrong), "--params", params, "--out", str(tmp_path / "x")]) == 2
