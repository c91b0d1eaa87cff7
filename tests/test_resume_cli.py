"""A training job killed at any moment continues from its last checkpoint when run again.

This drives the real command line the workflow calls (``python -m gan_core.train.osmis_cli train``):
the process is SIGKILLed after it wrote a checkpoint, started again, and its final weights must equal
those of a run that was never interrupted (CPU, deterministic, same seed).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_core.utils.images import write_image, write_mask

REPO = Path(__file__).resolve().parents[1]
PARAMS = {"image_size": [48, 80], "ch_G": 4, "ch_D": 4, "batch_size": 2, "bernoulli_warmup": 5,
          "iterations": 100, "checkpoint_every": 4, "log_every": 4}


@pytest.fixture()
def pair(tmp_path):
    rng = np.random.default_rng(0)
    image = (rng.random((48, 80, 3)) * 255).astype(np.uint8)
    mask = np.zeros((48, 80), dtype=np.int64)
    mask[10:30, 20:50] = 1
    write_image(tmp_path / "image.png", image)
    write_mask(tmp_path / "mask.png", mask)
    return tmp_path / "image.png", tmp_path / "mask.png"


def _cmd(pair, out):
    return [sys.executable, "-m", "gan_core.train.osmis_cli", "train", "--image", str(pair[0]), "--mask",
            str(pair[1]), "--out", str(out), "--params", json.dumps(PARAMS), "--seed", "3", "--device", "cpu"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _iteration(ckpt: Path) -> int:
    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["iteration"])


def test_killed_training_resumes_and_matches_uninterrupted_run(pair, tmp_path):
    ref = tmp_path / "reference"
    subprocess.run(_cmd(pair, ref), check=True, cwd=REPO, env=_env(), capture_output=True, timeout=600)

    run = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(pair, run), cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt = run / "checkpoint.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and _iteration(ckpt) >= 8:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed; make the run longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _iteration(ckpt)
    assert 8 <= killed_at < PARAMS["iterations"]
    assert not (run / "done.json").exists()

    res = subprocess.run(_cmd(pair, run), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"resumed {run} from iteration {killed_at}" in res.stderr
    logged = [json.loads(line)["iteration"] for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert logged == sorted(set(logged)), "iterations were trained twice: the run restarted instead of resuming"
    assert logged[-1] == PARAMS["iterations"] and (run / "done.json").exists()

    a = torch.load(ref / "checkpoint.pt", map_location="cpu", weights_only=True)["trainer"]
    b = torch.load(ckpt, map_location="cpu", weights_only=True)["trainer"]
    for part in ("G", "D", "G_ema"):
        key = next(k for k in a if k.lower() == part.lower())
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resume"
