"""SIV-GAN Single Image / Single Video data (thesis l.1468-1472) and multi-frame training."""
import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.data import embedded_single as emb
from gan_core.data import single_image as si
from gan_core.data import single_image_cli
from gan_core.errors import ConfigError, DataError
from gan_core.nets.osmis_config import OSMISConfig
from gan_core.train import osmis_cli
from gan_core.train.osmis_trainer import OSMISTrainer

TINY = dict(ch_G=4, ch_D=4, batch_size=3, image_size=(48, 80))


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models are fastest single-threaded (and do not oversubscribe a loaded 2-core machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _frames_dir(path, n, h=48, w=64):
    path.mkdir(parents=True)
    for t in range(n):
        Image.fromarray(_rgb(h, w, t)).save(path / f"{t:05d}.png")
    return path


# ------------------------------------------------------------------------------ bad input
def test_grayscale_and_rgba_are_converted_with_a_warning(tmp_path, caplog):
    gray = tmp_path / "gray.png"
    Image.fromarray(np.full((60, 70), 100, np.uint8), "L").save(gray)
    rgba = tmp_path / "rgba.png"
    a = np.zeros((60, 70, 4), np.uint8)
    a[..., 0], a[..., 3] = 200, 10
    Image.fromarray(a, "RGBA").save(rgba)
    with caplog.at_level(logging.WARNING, logger="gan_core.data.single_image"):
        g = si.load_training_image(gray)
        r = si.load_training_image(rgba)
    assert g.shape == (60, 70, 3) and g.dtype == np.uint8 and (g == 100).all()
    assert r.shape == (60, 70, 3) and (r[..., 0] == 200).all()  # alpha dropped, colour kept
    text = caplog.text
    assert "gray.png" in text and "grayscale" in text
    assert "rgba.png" in text and "RGBA" in text


def test_small_and_unreadable_images_raise_dataerror_naming_the_file(tmp_path):
    small = tmp_path / "small.png"
    Image.fromarray(_rgb(40, 100)).save(small)
    with pytest.raises(DataError, match="small.png.*smaller than the minimum side 48"):
        si.load_training_image(small)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(DataError, match="junk.png.*unreadable"):
        si.load_training_image(junk)
    with pytest.raises(DataError, match="empty_dir.*no image files"):
        (tmp_path / "empty_dir").mkdir()
        si.list_image_files(tmp_path / "empty_dir")
    # the CLI reports the file and exits non-zero
    assert single_image_cli.main(["image", "--src", str(small), "--out", str(tmp_path / "o.png")]) == 2


def test_video_frames_of_different_sizes_are_rejected(tmp_path):
    d = _frames_dir(tmp_path / "v", 3)
    Image.fromarray(_rgb(50, 64)).save(d / "00002.png")
    with pytest.raises(DataError, match="00002.png.*differs from the first frame"):
        si.prepare_video(d, tmp_path / "out")


# ------------------------------------------------------------------------------ datasets
def test_middle_frame_and_skip_factor_subsets(tmp_path):
    d = _frames_dir(tmp_path / "video", 9)
    out = si.prepare_image(d, tmp_path / "img" / "image.png")
    assert json.loads(out.with_suffix(".json").read_text())["source"].endswith("00004.png")  # 9 frames -> index 4
    np.testing.assert_array_equal(np.asarray(Image.open(out)), _rgb(48, 64, 4))
    frames = si.prepare_video(d, tmp_path / "all")
    assert len(frames) == 9
    sub = si.prepare_video(d, tmp_path / "skip3", skip=3, max_frames=3)
    meta = json.loads((tmp_path / "skip3" / "frames.json").read_text())
    assert [s[-9:] for s in meta["sources"]] == ["00000.png", "00003.png", "00006.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(sub[2])), _rgb(48, 64, 6))
    with pytest.raises(DataError, match="at skip factor 5"):  # 9 frames give only 2 at skip 5
        si.subsample(si.list_image_files(d), skip=5, max_frames=3)
    with pytest.raises(ConfigError):
        si.subsample(si.list_image_files(d), skip=0)


def test_embedded_single_data_is_deterministic(tmp_path):
    cfg = emb.EmbeddedSingleConfig(height=48, width=64, n_images=2, n_videos=1, n_frames=3, seed=0)
    a = emb.generate(tmp_path / "a", cfg)
    b = emb.generate(tmp_path / "b", cfg)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert [str(f) for f in files] == ["places/image-00.png", "places/image-01.png", "videos/video-00/00000.png",
                                      "videos/video-00/00001.png", "videos/video-00/00002.png"]
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes()
    im0, im1 = (np.asarray(Image.open(a / f)) for f in files[:2])
    assert im0.shape == (48, 64, 3) and not np.array_equal(im0, im1)  # distinct images
    v0, v2 = np.asarray(Image.open(a / files[2])), np.asarray(Image.open(a / files[4]))
    assert not np.array_equal(v0, v2)  # the video moves
    (tmp_path / "other").mkdir()
    with pytest.raises(DataError, match="refusing to replace"):
        emb.generate(tmp_path / "other", cfg)


# ------------------------------------------------------------------------ multi-frame training
def test_multi_frame_trainer_draws_batches_from_all_frames():
    frames = [np.full((48, 80, 3), 40 * i, np.uint8) for i in range(4)]
    torch.manual_seed(0)
    tr = OSMISTrainer(OSMISConfig(**TINY), frames)
    assert tr.n_real == 4
    assert [tuple(x.shape) for x in tr.real_images][-1] == (4, 3, 48, 80)
    # every frame is kept (distinct constant values), not just the first
    means = tr.real_images[-1].mean(dim=(1, 2, 3))
    assert torch.unique(means.round(decimals=3)).numel() == 4
    # the discriminator's real batches come from all frames (the first _augment call of a D step = reals)
    seen, orig = set(), tr._augment

    def spy(images, masks):
        if images[-1].shape[0] == tr.cfg.batch_size and not images[-1].requires_grad:
            seen.update(round(float(v), 2) for v in images[-1].mean(dim=(1, 2, 3)))
        return orig(images, masks)

    tr._augment = spy
    for it in range(4):
        logs = tr.train_step(it)
        assert np.isfinite(list(logs.values())).all()
    frame_means = {round(float(v), 2) for v in means}
    assert len(seen & frame_means) >= 3  # 12 draws from 4 frames (seeded): at least 3 distinct frames
    with pytest.raises(ConfigError, match="several training images with a mask"):
        OSMISTrainer(OSMISConfig(**TINY), frames, np.zeros((48, 80), np.int64))


def test_cli_trains_on_a_frame_folder_and_samples(tmp_path):
    d = _frames_dir(tmp_path / "frames", 3, 48, 80)
    params = json.dumps({**{k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items()},
                         "iterations": 2, "checkpoint_every": 1, "log_every": 1})
    rc = osmis_cli.main(["train", "--images", str(d), "--out", str(tmp_path / "run"), "--params", params,
                         "--device", "cpu"])
    assert rc == 0
    resolved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert len(resolved["image"]) == 3 and resolved["mask"] is None
    assert (tmp_path / "run" / "done.json").is_file()
    rc = osmis_cli.main(["sample", "--run", str(tmp_path / "run"), "--n", "2", "--out", str(tmp_path / "s"),
                         "--device", "cpu"])
    assert rc == 0 and len(list((tmp_path / "s" / "images").glob("*.png"))) == 2
    # several images with a mask are refused
    Image.fromarray(np.zeros((48, 80), np.uint8)).save(tmp_path / "m.png")
    rc = osmis_cli.main(["train", "--images", str(d), "--mask", str(tmp_path / "m.png"),
                         "--out", str(tmp_path / "r2"), "--params", params, "--device", "cpu"])
    assert rc == 2
