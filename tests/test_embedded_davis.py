"""The embedded DAVIS-format dataset (generated from CC0 scikit-image samples) and the DAVIS reader."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_core.data import embedded_cli
from gan_core.data.davis import DavisDataset
from gan_core.data.embedded_davis import (
    EmbeddedDavisConfig,
    SOURCE_SHA256,
    generate,
    load_sources,
    render_sequence,
    sequence_specs,
    skimage_data_dir,
)
from gan_core.errors import ConfigError, DataError, MissingResourceError
from gan_core.utils.images import davis_palette, write_mask

TINY = EmbeddedDavisConfig(height=96, width=160, n_frames=4, seed=0)


def _tree_hash(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("emb") / "DAVIS", TINY)


def test_byte_identical_for_same_parameters(tiny, tmp_path):
    again = generate(tmp_path / "again", TINY)
    h1, h2 = _tree_hash(tiny), _tree_hash(again)
    assert h1 == h2 and len(h1) == 6 * 4 * 2 + 4 + 1
    other = generate(tmp_path / "other", EmbeddedDavisConfig(height=96, width=160, n_frames=4, seed=1))
    h3 = _tree_hash(other)
    assert h3.keys() == h1.keys()
    assert sum(h1[k] != h3[k] for k in h1 if k.endswith(".jpg")) == 24  # another seed, other frames


def test_layout_matches_davis(tiny):
    specs = sequence_specs(TINY)
    names = [s.name for s in specs]
    assert sorted(p.name for p in (tiny / "JPEGImages" / "480p").iterdir()) == sorted(names)
    assert sorted(p.name for p in (tiny / "Annotations" / "480p").iterdir()) == sorted(names)
    for s in specs:
        jpgs = sorted((tiny / "JPEGImages" / "480p" / s.name).iterdir())
        pngs = sorted((tiny / "Annotations" / "480p" / s.name).iterdir())
        assert [p.name for p in jpgs] == [f"{i:05d}.jpg" for i in range(4)]
        assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(4)]
        with Image.open(jpgs[0]) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (160, 96)
        with Image.open(pngs[0]) as m:
            assert m.format == "PNG" and m.mode == "P" and m.size == (160, 96)
            assert m.getpalette()[:768] == davis_palette()
            ids = set(np.unique(np.asarray(m)).tolist())
        assert ids == set(range(s.n_objects + 1))
    lists = {(y, sp): (tiny / "ImageSets" / y / f"{sp}.txt").read_text().split()
             for y in ("2016", "2017") for sp in ("train", "val")}
    assert lists[("2017", "val")] == ["val-horse-00", "val-horse-01", "val-horse-ellipse-02"]
    assert lists[("2016", "val")] == ["val-horse-00", "val-horse-01"]  # single-object only
    assert lists[("2017", "train")] == ["train-horse-00", "train-horse-01", "train-horse-ellipse-02"]
    assert lists[("2016", "train")] == ["train-horse-00", "train-horse-01"]


def test_png_masks_equal_rendered_labels(tiny):
    src = load_sources()
    for spec in sequence_specs(TINY):
        _, labels = render_sequence(spec, TINY, src)
        for t, lab in enumerate(labels):
            png = np.asarray(Image.open(tiny / "Annotations" / "480p" / spec.name / f"{t:05d}.png"))
            np.testing.assert_array_equal(png, lab)


def test_object_pixels_differ_from_background_in_jpeg(tiny):
    ds = DavisDataset(tiny)
    for seq in ds.sequences("2017", "val"):
        for t in range(4):
            img, mask = ds.read_pair(seq, t, "2017")
            img = img.astype(np.float64)
            ids = [k for k in np.unique(mask) if k > 0]
            assert ids, (seq, t)
            bg_mean = img[mask == 0].mean(0)
            # nearest-mean classifier on the JPEG colours recovers the exact mask
            means = np.stack([bg_mean] + [img[mask == k].mean(0) for k in ids])
            dist = ((img[:, :, None, :] - means[None, None]) ** 2).sum(-1)
            pred = np.array([0] + ids)[dist.argmin(-1)]
            assert (pred == mask).mean() > 0.95, (seq, t, (pred == mask).mean())
            for k in ids:
                assert np.linalg.norm(img[mask == k].mean(0) - bg_mean) > 60


def test_mask_is_the_scaled_horse_silhouette():
    """Crop the rendered horse mask, resize it to the source silhouette: near-identical shape."""
    cfg = EmbeddedDavisConfig(height=240, width=427, n_frames=1, n_train_sequences=0, n_val_sequences=2, seed=3)
    src = load_sources()
    sil = src.horse
    # the source silhouette (skimage.data.horse: True = background) covers 33.1 % of the image (reference notes)
    import skimage.data

    assert abs((~skimage.data.horse()).mean() - 0.331) < 0.001 and sil.sum() == (~skimage.data.horse()).sum()
    for spec in sequence_specs(cfg):
        _, labels = render_sequence(spec, cfg, src)
        m = labels[0] == 1
        ys, xs = np.nonzero(m)
        crop = m[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
        back = np.asarray(Image.fromarray(crop.astype(np.uint8) * 255).resize(sil.shape[::-1], Image.NEAREST)) > 0
        iou = max(((back & s).sum() / (back | s).sum()) for s in (sil, sil[:, ::-1]))
        assert iou > 0.85, iou
        # area scales with the squared linear scale (bounding-box height ratio)
        scale = crop.shape[0] / sil.shape[0]
        assert abs(m.sum() / (sil.sum() * scale**2) - 1) < 0.1


def test_davis_reader_modes(tiny):
    ds = DavisDataset(tiny)
    assert ds.sequences("2016", "val") == ["val-horse-00", "val-horse-01"]
    multi = "val-horse-ellipse-02"
    m17 = ds.read_mask(multi, 0, "2017")
    m16 = ds.read_mask(multi, 0, "2016")
    assert m17.dtype == np.int64 and set(np.unique(m17).tolist()) == {0, 1, 2}
    np.testing.assert_array_equal(m16, (m17 > 0).astype(np.int64))
    assert ds.num_objects(multi) == 2 and ds.num_objects("val-horse-00") == 1
    img, mask = ds.first_frame_pair(multi, mode=2016)
    assert img.shape == (96, 160, 3) and img.dtype == np.uint8 and mask.max() == 1
    assert len(ds.frames(multi)) == 4 and ds.annotation(multi, 3).name == "00003.png"
    with pytest.raises(ConfigError):
        ds.read_mask(multi, 0, "2018")


def test_void_is_background_in_both_modes(tiny, tmp_path):
    root = Path(shutil.copytree(tiny, tmp_path / "D"))
    p = root / "Annotations" / "480p" / "val-horse-00" / "00001.png"
    lab = np.asarray(Image.open(p)).copy()
    lab[:5] = 255
    write_mask(p, lab)
    ds = DavisDataset(root)
    for mode in ("2016", "2017"):
        m = ds.read_mask("val-horse-00", 1, mode)
        assert (m[:5] == 0).all() and m.max() == 1


def test_bad_inputs_name_the_file(tiny, tmp_path):
    with pytest.raises(MissingResourceError, match="fetch_davis2017_trainval_480p"):
        DavisDataset(tmp_path / "nowhere")
    root = Path(shutil.copytree(tiny, tmp_path / "D"))
    ds = DavisDataset(root)
    ann = root / "Annotations" / "480p"
    # mask size differs from the frame
    bad = ann / "val-horse-00" / "00000.png"
    write_mask(bad, np.ones((50, 50), dtype=np.uint8))
    with pytest.raises(DataError, match="differs") as ei:
        ds.first_frame_pair("val-horse-00")
    assert ei.value.path == bad
    # empty first mask
    empty = ann / "val-horse-01" / "00000.png"
    write_mask(empty, np.zeros((96, 160), dtype=np.uint8))
    with pytest.raises(DataError, match="empty") as ei:
        ds.first_frame_pair("val-horse-01")
    assert ei.value.path == empty
    # unreadable image
    jpg = root / "JPEGImages" / "480p" / "val-horse-ellipse-02" / "00002.jpg"
    jpg.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="unreadable") as ei:
        ds.read_frame("val-horse-ellipse-02", 2)
    assert ei.value.path == jpg
    # list naming a sequence that does not exist
    (root / "ImageSets" / "2017" / "val.txt").write_text("ghost\n")
    with pytest.raises(DataError, match="ghost"):
        ds.sequences("2017", "val")


def test_source_images_are_pinned(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in SOURCE_SHA256:
        shutil.copy(skimage_data_dir() / name, data / name)
    assert load_sources(data).horse.dtype == bool
    raw = bytearray((data / "grass.png").read_bytes())
    raw[-20] ^= 0xFF
    (data / "grass.png").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="differs from the pinned") as ei:
        load_sources(data)
    assert ei.value.path == data / "grass.png"


def test_cli_and_config_checks(tmp_path, capsys):
    out = tmp_path / "E"
    assert embedded_cli.main(["davis", "--out", str(out), "--height", "64", "--width", "112",
                              "--n-frames", "2", "--seed", "5"]) == 0
    assert Image.open(out / "JPEGImages" / "480p" / "val-horse-00" / "00001.jpg").size == (112, 64)
    # re-running replaces an earlier embedded dataset atomically
    assert embedded_cli.main(["davis", "--out", str(out), "--height", "64", "--width", "112",
                              "--n-frames", "3"]) == 0
    assert len(list((out / "JPEGImages" / "480p" / "val-horse-00").iterdir())) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".E.")]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("user data")
    assert embedded_cli.main(["davis", "--out", str(foreign), "--height", "64", "--width", "112"]) == 1
    assert (foreign / "keep.txt").read_text() == "user data" and "refusing" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        EmbeddedDavisConfig(n_val_sequences=1, n_multi_object=1)
