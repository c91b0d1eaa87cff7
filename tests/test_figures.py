"""Figures are rendered from existing files only; missing pairs are skipped and counted."""
import json

import numpy as np
from PIL import Image

from gan_core.report import figures
from gan_core.utils.images import write_image, write_mask


def _pool(tmp_path, name):
    d = tmp_path / name
    img = np.full((24, 40, 3), 100, np.uint8)
    mask = np.zeros((24, 40), np.int64)
    mask[5:15, 10:30] = 1
    write_image(d / "image.png", img)
    write_mask(d / "mask.png", mask)
    entries = []
    for i in range(4):
        write_image(d / "f" / "images" / f"{i:03d}.png", img + i)
        write_mask(d / "f" / "masks" / f"{i:03d}.png", mask)
        entries.append({"image": f"images/{i:03d}.png", "mask": f"masks/{i:03d}.png"})
    (d / "f" / "manifest.json").write_text(json.dumps({"kept": entries[:3], "rejected": entries[3:]}))
    return {"name": name, "image": str(d / "image.png"), "mask": str(d / "mask.png"),
            "manifest": str(d / "f" / "manifest.json")}


def test_overlay_colours_only_objects():
    img = np.zeros((4, 4, 3), np.uint8)
    mask = np.zeros((4, 4), np.int64)
    mask[0, 0] = 1
    mask[1, 1] = 255  # void stays untouched
    out = figures.overlay(img, mask, alpha=1.0)
    assert tuple(out[0, 0]) == tuple(figures.PALETTE[1])
    assert out[1, 1].sum() == 0 and out[3, 3].sum() == 0
    edge = figures.boundaries(np.pad(np.ones((2, 2), np.int64), 1))
    # right-neighbour transitions (1,0),(1,2),(2,0),(2,2); lower ones (0,1),(0,2),(2,1),(2,2): 7 distinct pixels
    assert edge.sum() == 7


def test_render_all_skips_missing_pairs(tmp_path):
    ok = _pool(tmp_path, "seq_a")
    missing = {**_pool(tmp_path, "seq_b"), "manifest": str(tmp_path / "nope" / "manifest.json")}
    spec = tmp_path / "spec.json"
    out = tmp_path / "fig" / "pools.png"
    spec.write_text(json.dumps({"figures": [{"out": str(out), "pairs": [ok, missing], "title": "t"}]}))
    written = figures.render_all(spec)
    assert written == [out] and out.is_file()
    w, h = Image.open(out).size
    assert w > 100 and h > 50


def test_render_all_with_nothing_computed_writes_nothing(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"figures": [{"out": str(tmp_path / "x.png"), "pairs": [
        {"name": "a", "image": "/nonexistent/i.png", "mask": "/nonexistent/m.png", "manifest": "/nonexistent/f.json"}]}]}))
    assert figures.render_all(spec) == []
    assert not (tmp_path / "x.png").exists()
