"""Bad input: OSMIS training pairs (image modes, sizes, mask formats, classes) and the downstream systems
(RePRI supports without foreground, objects that appear after frame 0, synthetic pools smaller than asked).

Each case checks the documented behaviour (README "Bad input") and that the message names the file."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.data import pair_cli
from gan_core.errors import DataError
from gan_core.train import osmis_cli
from gan_core.utils.images import check_mask_classes, read_image, read_mask, write_image, write_mask


def _rgb(h=48, w=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# =========================================================================== A. images
def test_grayscale_and_palette_images_become_rgb_with_a_warning(tmp_path, caplog):
    gray = np.random.default_rng(1).integers(0, 256, (20, 30), dtype=np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    with caplog.at_level(logging.WARNING):
        arr = read_image(tmp_path / "gray.png")
    assert arr.shape == (20, 30, 3) and arr.dtype == np.uint8
    assert all(np.array_equal(arr[..., c], gray) for c in range(3))
    assert "gray.png" in caplog.text and "mode L" in caplog.text

    pal = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), "P")
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.save(tmp_path / "pal.png")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        arr = read_image(tmp_path / "pal.png")
    assert arr[0, 0].tolist() == [10, 20, 30] and arr[0, 1].tolist() == [200, 100, 50]
    assert "pal.png" in caplog.text

    g16 = np.array([[0, 65535], [32768, 1000]], np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    arr = read_image(tmp_path / "g16.png")
    assert arr[..., 0].tolist() == [[0, 255], [128, 4]]  # 16-bit range scaled to 8 bits, not clipped

    # an RGB image gives no warning
    write_image(tmp_path / "rgb.png", _rgb(4, 4))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        read_image(tmp_path / "rgb.png")
    assert caplog.text == ""


def test_rgba_opaque_alpha_dropped_transparent_composited_on_black(tmp_path, caplog):
    rgb = _rgb(6, 8)
    opaque = np.dstack([rgb, np.full((6, 8), 255, np.uint8)])
    Image.fromarray(opaque, "RGBA").save(tmp_path / "opaque.png")
    with caplog.at_level(logging.WARNING):
        assert np.array_equal(read_image(tmp_path / "opaque.png"), rgb)
    assert "opaque.png" in caplog.text and "alpha dropped" in caplog.text

    alpha = np.full((6, 8), 255, np.uint8)
    alpha[:, :4] = 0
    alpha[0, 5] = 128
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "cutout.png")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        arr = read_image(tmp_path / "cutout.png")
    assert "cutout.png" in caplog.text and "composited on black" in caplog.text and "25 non-opaque" in caplog.text
    assert (arr[:, :4] == 0).all()                              # fully transparent -> black
    assert np.array_equal(arr[1:, 4:], rgb[1:, 4:])             # opaque pixels unchanged
    assert np.array_equal(arr[0, 5], np.round(rgb[0, 5].astype(float) * 128 / 255).astype(np.uint8))  # premultiplied

    la = np.dstack([rgb[..., 0], alpha])
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    arr = read_image(tmp_path / "la.png")
    assert (arr[:, :4] == 0).all() and np.array_equal(arr[1:, 4:, 1], rgb[1:, 4:, 0])


def test_image_below_minimum_size_names_file_and_minimum(tmp_path, capsys):
    write_image(tmp_path / "small.png", _rgb(40, 80))
    with pytest.raises(DataError, match=r"small\.png.*40x80.*minimum side 48 px") as ei:
        osmis_cli.load_inputs(str(tmp_path / "small.png"), None)
    assert ei.value.path.name == "small.png"
    rc = osmis_cli.main(["train", "--image", str(tmp_path / "small.png"), "--out", str(tmp_path / "r"),
                         "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "small.png" in err and "48 px" in err and not (tmp_path / "r").exists()


# =========================================================================== A. masks
def test_mask_formats_palette_binary_multiclass(tmp_path, caplog):
    lab = np.zeros((6, 8), np.int64)
    lab[1:3, 1:4] = 1
    lab[4:, 5:] = 2
    lab[0, 0] = 255
    write_mask(tmp_path / "palette.png", lab)                          # DAVIS-17 palette: ids kept, void 255
    assert np.array_equal(read_mask(tmp_path / "palette.png"), lab)

    fg = lab == 1
    Image.fromarray((fg * 255).astype(np.uint8), "L").save(tmp_path / "bin255.png")   # DAVIS-16 style
    Image.fromarray(fg.astype(np.uint8), "L").save(tmp_path / "bin01.png")
    Image.fromarray(fg).save(tmp_path / "bin1bit.png")                                 # mode '1'
    for name in ("bin255.png", "bin01.png", "bin1bit.png"):
        m = read_mask(tmp_path / name)
        assert m.dtype == np.int64 and np.array_equal(m, fg.astype(np.int64)), name

    Image.fromarray(lab.astype(np.uint8), "L").save(tmp_path / "multi.png")           # grayscale label map
    assert np.array_equal(read_mask(tmp_path / "multi.png"), lab)

    gray3 = np.repeat(lab.astype(np.uint8)[..., None], 3, axis=2)
    Image.fromarray(gray3, "RGB").save(tmp_path / "gray_as_rgb.png")
    with caplog.at_level(logging.WARNING):
        assert np.array_equal(read_mask(tmp_path / "gray_as_rgb.png"), lab)
    assert "gray_as_rgb.png" in caplog.text

    colour = gray3.copy()
    colour[lab == 1] = [200, 0, 0]
    Image.fromarray(colour, "RGB").save(tmp_path / "colour.png")
    with pytest.raises(DataError, match=r"colour\.png.*palette PNG"):
        read_mask(tmp_path / "colour.png")

    soft = np.linspace(0, 255, 48).astype(np.uint8).reshape(6, 8)                      # anti-aliased / soft
    Image.fromarray(soft, "L").save(tmp_path / "soft.png")
    with pytest.raises(DataError, match=r"soft\.png.*binary_threshold"):
        read_mask(tmp_path / "soft.png")
    assert np.array_equal(read_mask(tmp_path / "soft.png", binary_threshold=127), (soft > 127).astype(np.int64))


def test_more_classes_than_configured_names_file_classes_and_number(tmp_path, capsys):
    img = _rgb()
    lab = np.zeros((48, 80), np.int64)
    lab[5:20, 5:30] = 1
    lab[25:40, 40:70] = 2
    lab[0, :] = 255  # void is background, not a class
    write_image(tmp_path / "f.png", img)
    write_mask(tmp_path / "m.png", lab)
    check_mask_classes(tmp_path / "m.png", lab, 3)   # ids 0..2 fit 3 classes
    check_mask_classes(tmp_path / "m.png", lab, 0)   # 0 = derived from the mask
    with pytest.raises(DataError, match=r"m\.png.*3 classes \[0, 1, 2\].*num_mask_classes=2") as ei:
        osmis_cli.load_inputs(str(tmp_path / "f.png"), str(tmp_path / "m.png"), 2)
    assert ei.value.path.name == "m.png"
    rc = osmis_cli.main(["train", "--image", str(tmp_path / "f.png"), "--mask", str(tmp_path / "m.png"),
                         "--out", str(tmp_path / "r"), "--params", json.dumps({"num_mask_classes": 2}),
                         "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "m.png" in err and "[0, 1, 2]" in err and "num_mask_classes=2" in err


def test_image_mask_size_mismatch_names_both_files(tmp_path):
    write_image(tmp_path / "frame.png", _rgb(48, 80))
    write_mask(tmp_path / "mask.png", np.ones((48, 64), np.int64))
    with pytest.raises(DataError) as ei:
        osmis_cli.load_inputs(str(tmp_path / "frame.png"), str(tmp_path / "mask.png"))
    msg = str(ei.value)
    assert "mask.png" in msg and "frame.png" in msg and "64x48" in msg and "80x48" in msg


def _davis_first_frame(root: Path, image: Image.Image, mask: np.ndarray, seq: str = "s"):
    (root / "JPEGImages" / "480p" / seq).mkdir(parents=True, exist_ok=True)
    image.save(root / "JPEGImages" / "480p" / seq / "00000.jpg")
    write_mask(root / "Annotations" / "480p" / seq / "00000.png", mask)


def test_pair_cli_grayscale_frame_and_mismatch(tmp_path, caplog, capsys):
    root = tmp_path / "DAVIS"
    lab = np.zeros((48, 80), np.int64)
    lab[10:30, 10:40] = 1
    lab[30:40, 50:70] = 3
    gray = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 80), dtype=np.uint8), "L")
    _davis_first_frame(root, gray, lab)
    out_i, out_m = tmp_path / "pair.png", tmp_path / "pair_mask.png"
    with caplog.at_level(logging.WARNING):
        assert pair_cli.main(["--davis-root", str(root), "--sequence", "s", "--mode", "2017",
                              "--out-image", str(out_i), "--out-mask", str(out_m)]) == 0
    assert "00000.jpg" in caplog.text and "converted to RGB" in caplog.text
    assert Image.open(out_i).mode == "RGB" and np.array_equal(read_mask(out_m), lab)
    assert pair_cli.main(["--davis-root", str(root), "--sequence", "s", "--mode", "2016",
                          "--out-image", str(out_i), "--out-mask", str(out_m)]) == 0
    assert np.array_equal(read_mask(out_m), (lab > 0).astype(np.int64))

    _davis_first_frame(root, gray, np.ones((48, 64), np.int64), seq="bad")
    capsys.readouterr()
    assert pair_cli.main(["--davis-root", str(root), "--sequence", "bad", "--mode", "2017",
                          "--out-image", str(tmp_path / "b.png"), "--out-mask", str(tmp_path / "bm.png")]) == 1
    err = capsys.readouterr().err
    assert "bad/00000.png" in err and "bad/00000.jpg" in err and "differs" in err
    assert not (tmp_path / "b.png").exists()


# =========================================================================== B. RePRI
def _coco(root: Path) -> Path:
    """Four images of fold-0 class 1 (>= 2048 px) and one without any foreground ("imgz")."""
    lines = []
    for name in ("img0", "img1", "img2", "img3", "imgz"):
        lab = np.zeros((64, 64), np.uint8)
        if name != "imgz":
            lab[:48, :48] = 1
        write_image(root / "val2014" / f"{name}.jpg", _rgb(64, 64))
        (root / "val").mkdir(parents=True, exist_ok=True)
        Image.fromarray(lab, "L").save(root / "val" / f"{name}.png")
        lines.append(f"val2014/{name}.jpg val/{name}.png")
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    return root / "val.txt"


def _synthetic(root: Path, stem: str, n: int, with_fg: bool = True):
    d = root / "1" / stem
    d.mkdir(parents=True, exist_ok=True)
    kept = []
    for j in range(n):
        m = np.zeros((64, 64), np.uint8)
        if with_fg:
            m[5:40, 5:40] = 1
        write_image(d / f"{j}.png", _rgb(64, 64, seed=j))
        Image.fromarray(m, "L").save(d / f"{j}_mask.png")
        kept.append({"image": f"{j}.png", "mask": f"{j}_mask.png"})
    (d / "manifest.json").write_text(json.dumps({"kept": kept}))


def test_repri_support_without_foreground_and_small_synthetic_pool(tmp_path, caplog):
    from downstream.repri.episodes import (SyntheticPools, fold_classes, index_dataset, read_list,
                                           read_support_pool, sample_episodes)

    index = index_dataset(read_list(_coco(tmp_path / "coco"), tmp_path / "coco"), fold_classes(0))
    stems = [it.stem for it in index.items]
    pool_file = tmp_path / "pool.json"
    pool_file.write_text(json.dumps({"1": ["img0", "img1", "imgz"]}))
    with caplog.at_level(logging.WARNING):
        pool = read_support_pool(pool_file, index)
    # the support without foreground is dropped from the pool, with a warning naming the pool file and image
    assert [stems[i] for i in pool[1]] == ["img0", "img1"]
    assert "pool.json" in caplog.text and "imgz" in caplog.text

    syn = tmp_path / "syn"
    _synthetic(syn, "img0", 3)                   # 3 < 10 requested: all 3 used
    _synthetic(syn, "img1", 2, with_fg=False)    # no foreground anywhere: nothing added
    pools = SyntheticPools(syn)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        s = sample_episodes(index, 12, np.random.default_rng(0), support_pool=pool, synthetic=pools.get,
                            max_synthetic=10)
    plain = sample_episodes(index, 12, np.random.default_rng(0), support_pool=pool)
    expected = {"img0": 3, "img1": 0}
    seen = set()
    for e, p in zip(s.episodes, plain.episodes):
        stem = stems[e.supports[0]]
        seen.add(stem)
        assert len(e.synthetic) == expected[stem] and e.n_shots == 1 + expected[stem]
        assert e.n_shots - p.n_shots == expected[stem]   # the support set grows by the synthetic supports
    assert seen == {"img0", "img1"}
    assert "3 pair(s) < max_synthetic 10" in caplog.text and "0 pair(s) < max_synthetic 10" in caplog.text
    assert "has no foreground" in caplog.text and "img1" in caplog.text
    # warned once per class and support set, not once per episode
    assert caplog.text.count("3 pair(s) < max_synthetic") == 1


# =========================================================================== B. OSVOS / STM
def _davis_video(root: Path, h=32, w=48, n_frames=4, n_syn=2):
    """seqa: objects 1 and 2 in frame 0, object 3 from frame 2 on; a synthetic pool of ``n_syn`` pairs."""
    yy, xx = np.mgrid[:h, :w]
    rng = np.random.default_rng(0)
    for t in range(n_frames):
        lab = np.zeros((h, w), np.int64)
        lab[(yy - 12) ** 2 + (xx - 14 - t) ** 2 <= 36] = 1
        lab[(yy - 22) ** 2 + (xx - 34 + t) ** 2 <= 25] = 2
        if t >= 2:
            lab[26:30, 2:8] = 3
        img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
        img[lab > 0] = 200
        write_image(root / "JPEGImages" / "480p" / "seqa" / f"{t:05d}.jpg", img)
        write_mask(root / "Annotations" / "480p" / "seqa" / f"{t:05d}.png", lab)
    kept = []
    for i in range(n_syn):
        lab = np.zeros((h, w), np.int64)
        lab[4 + i:12 + i, 6:16] = 1
        lab[14:20, 24:32] = 2
        write_image(root / "syn" / f"img{i}.png", np.where(lab[..., None] > 0, 200, 30).astype(np.uint8)
                    .repeat(3, axis=2))
        write_mask(root / "syn" / f"mask{i}.png", lab)
        kept.append({"image": f"img{i}.png", "mask": f"mask{i}.png"})
    (root / "syn" / "manifest.json").write_text(json.dumps({"kept": kept}))
    (root / "syn" / "empty.json").write_text(json.dumps({"kept": []}))


def test_osvos_later_object_and_small_synthetic_pool(tmp_path, caplog):
    from downstream.osvos import data
    from downstream.osvos.config import OSVOSConfig
    from downstream.osvos.finetune import FinetuneTrainer, finetune_sequence
    from downstream.osvos.net import OSVOSNet
    from gan_core.utils.dataclass_config import from_dict

    root = tmp_path / "DAVIS"
    _davis_video(root)
    parent = tmp_path / "parent.pth"
    torch.manual_seed(0)
    torch.save(OSVOSNet(0.0625).state_dict(), parent)
    cfg = from_dict(OSVOSConfig, {"width": 0.0625, "input_normalisation": "imagenet", "n_passes": 1,
                                  "n_ave_grad": 1, "lr": 1e-6, "synthetic": True, "log_every": 1,
                                  "checkpoint_every": 1})
    with caplog.at_level(logging.WARNING):
        done = finetune_sequence(root, "seqa", "2017", parent, root / "syn" / "manifest.json", tmp_path / "out",
                                 cfg, seed=0, progress=False)
    assert done["objects"] == [1, 2] and done["untracked_objects"] == [3]
    assert "seqa" in caplog.text and "[3]" in caplog.text and "after frame 0" in caplog.text
    preds = [read_mask(p) for p in sorted((tmp_path / "out" / "predictions").iterdir())]
    assert all(3 not in np.unique(p) for p in preds)   # never predicted
    # DAVIS-16 mode merges every object: nothing is untracked
    d16 = finetune_sequence(root, "seqa", "2016", parent, root / "syn" / "manifest.json", tmp_path / "out16",
                            cfg, seed=0, progress=False)
    assert d16["untracked_objects"] == []

    # a synthetic_ratio of 0.75 asks for 3 synthetic pairs per batch; a pool of 2 is drawn with replacement
    cfg3 = from_dict(OSVOSConfig, {"width": 0.0625, "synthetic": True, "synthetic_ratio": 0.75,
                                   "input_normalisation": "imagenet"})
    assert cfg3.n_synthetic == 3
    image = torch.zeros(3, 32, 48, dtype=torch.uint8)
    mask = torch.zeros(32, 48)
    syn_i, syn_l = data.load_synthetic_pool(data.read_synthetic_manifest(root / "syn" / "manifest.json"), (32, 48))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        tr = FinetuneTrainer(OSVOSNet(0.0625), cfg3, image, mask, syn_i, (syn_l == 1).float())
    assert "2 pair(s) < 3 per batch" in caplog.text
    x, y = tr.make_batch()
    assert x.shape[0] == 4 and y.shape[0] == 4            # 1 real + 3 synthetic (75 % synthetic)
    assert set(tr.last_synthetic_index.tolist()) <= {0, 1}
    # an empty pool is an error naming the manifest
    with pytest.raises(DataError, match=r"empty\.json.*no synthetic pair"):
        data.read_synthetic_manifest(root / "syn" / "empty.json")


def test_stm_later_object_and_small_memory_pool(tmp_path, caplog):
    from downstream.stm.config import STMConfig
    from downstream.stm.inference import expected_memory_sizes
    from downstream.stm.sequence import segment_sequence
    from downstream.stm.train_tiny import build_model

    root = tmp_path / "DAVIS"
    _davis_video(root, n_syn=3)
    torch.manual_seed(0)
    cfg = STMConfig(backbone="resnet18", width=0.25, synthetic=True, max_synthetic=10, mem_every=5)
    model = build_model(cfg).eval()
    with caplog.at_level(logging.WARNING):
        done = segment_sequence(model, root, "seqa", "2017", root / "syn" / "manifest.json", tmp_path / "out", cfg)
    assert done["untracked_objects"] == [3] and "objects [3] appear after frame 0" in caplog.text
    assert "3 pairs < max_synthetic 10" in caplog.text and "seqa" in caplog.text
    assert done["synthetic_used"] == 3 and done["synthetic_requested"] == 10
    # memory grows by the injected pairs (3, the whole pool)
    assert done["memory_sizes"] == [3 + m for m in expected_memory_sizes(4, 5)]
