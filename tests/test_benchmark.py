"""Throughput benchmark: a tiny CPU run reports positive iterations/s and memory (fast)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan_core.bench import throughput
from gan_core.bench.throughput import BenchConfig, parse_size, run_benchmark, synthetic_pair
from gan_core.errors import ConfigError
from gan_core.nets.osmis import to_device


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("model, classes", [("sivgan", 0), ("osmis", 3)])
def test_tiny_cpu_benchmark(model, classes):
    cfg = BenchConfig(model=model, size=(48, 80), iters=2, warmup=1, batch=2, device="cpu", ch=4, threads=1,
                      mask_classes=max(classes, 2))
    row = run_benchmark(cfg)
    assert row["it_per_s"] > 0 and row["s_per_it"] > 0
    assert abs(row["it_per_s"] * row["s_per_it"] - 1.0) < 1e-9
    assert row["peak_memory_bytes"] > 10 * 2**20 and row["peak_memory_kind"] == "cpu_max_rss"
    assert row["resolution"] == [48, 80] and row["threads"] == 1
    assert row["mask_classes"] == classes
    assert row["params_G"] > 0 and row["params_D"] > 0


def test_cli_prints_one_json_line_and_profile(capsys):
    rc = throughput.main(["--model", "osmis", "--size", "48x80", "--iters", "1", "--warmup", "0", "--batch", "2",
                          "--device", "cpu", "--ch", "4", "--threads", "1", "--profile",
                          "--params", '{"mask_supervision": "d_m"}'])
    assert rc == 0
    captured = capsys.readouterr()
    lines = [ln for ln in captured.out.splitlines() if ln.strip()]
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert row["model"] == "osmis" and row["params"] == {"mask_supervision": "d_m"} and row["it_per_s"] > 0
    assert "Self CPU" in captured.err and "osmis.D_step" in captured.err and "osmis.G_step" in captured.err


def test_bad_arguments_are_reported():
    with pytest.raises(ConfigError):
        parse_size("256")
    with pytest.raises(ConfigError):
        BenchConfig(model="stylegan")
    assert throughput.main(["--size", "48x80", "--params", "[1]", "--device", "cpu"]) == 2
    assert throughput.main(["--size", "48x80", "--params", '{"bogus": 1}', "--device", "cpu"]) == 2


def test_synthetic_pair_and_to_device():
    img, mask = synthetic_pair(48, 80, 3)
    assert img.shape == (48, 80, 3) and img.dtype == np.uint8 and img.std() > 10
    assert mask.shape == (48, 80) and set(np.unique(mask)) == {0, 1, 2}
    assert synthetic_pair(48, 80, 0)[1] is None
    t = torch.arange(3)
    assert to_device(t, "cpu") is t
