"""Merge the per-pool synthesis metrics of OSMIS (Tables 6.1-6.4) and SIV-GAN (Tables 5.1-5.6,
Fig. 5.6), and average them over sequences / images / videos.

Per pool three raw metric files exist (SIFID layer 0, LPIPS diversity, UNet mask alignment, each
written by a metric CLI). :func:`merge_pool_metrics` turns them into one record with the keys the
tables read ("sifid", "lpips", "miou" plus "miou_thresholded"); :func:`average_over_sequences`
averages the records of all DAVIS-17 sequences of a variant. A metric missing in a pool is left
out of the mean and counted, never replaced by a number.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import DataError
from ..utils.atomic import write_json
from ..utils.jsonfile import read_json

METRICS = ("sifid", "lpips", "miou")
AVERAGED = METRICS + ("miou_thresholded",)
DEFINITIONS = {
    "sifid": "mean over samples of SIFID at Inception layer 0 (64-d) vs. the training image",
    "lpips": "mean LPIPS(alex) over all pairs of generated images",
    "miou": "plain mIoU (0..1) of the UNet trained on the generated pairs, tested on the augmented "
            "real image; miou_thresholded = the official code's thresholded score",
}


def read_metric_file(path: str | Path) -> dict[str, Any]:
    return read_json(path, "metric file")


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def merge_pool_metrics(sifid_file: str | Path, lpips_file: str | Path, mask_file: str | Path | None,
                       out: str | Path, provenance: Mapping[str, Any]) -> dict[str, Any]:
    """One JSON per pool: sifid (layer 0 mean), lpips (mean pairwise), miou (+ thresholded score).
    ``mask_file`` None: a mask-free model (SIV-GAN) -- no mask-alignment entries (null, left out of averages)."""
    sifid, lpips = (read_metric_file(p) for p in (sifid_file, lpips_file))
    mask = read_metric_file(mask_file) if mask_file is not None else {}
    try:
        sifid_value = sifid["value"]["mean_sifid_64"]
    except (KeyError, TypeError) as exc:
        raise DataError(sifid_file, "no 'value.mean_sifid_64' (SIFID at layer 0) in the file") from exc
    details = mask.get("details", {})
    labels = {"sifid": sifid.get("weights_label"), "lpips": lpips.get("weights_label"),
              "unet": details.get("weights_label")}
    record = {
        "sifid": _number(sifid_value),
        "lpips": _number(lpips.get("value")),
        "miou": _number(details.get("miou")),
        "miou_thresholded": _number(details.get("thresholded_iou")),
        "pixel_accuracy": _number(details.get("pixel_accuracy")),
        "n_samples": details.get("n_fakes"),
        "definitions": DEFINITIONS,
        "sources": {"sifid": str(sifid_file), "lpips": str(lpips_file),
                    "mask_alignment": None if mask_file is None else str(mask_file)},
        "provenance": {**provenance,
                       "weights_label": "; ".join(f"{k}: {v}" for k, v in labels.items() if v)},
    }
    write_json(out, record)
    return record


def average_over_sequences(files: Sequence[str | Path], sequences: Sequence[str], out: str | Path,
                           provenance: Mapping[str, Any], keys: Sequence[str] = AVERAGED) -> dict[str, Any]:
    """Mean of every metric in ``keys`` over the sequences (a metric missing in a pool is left out and
    counted). Also used for SIV-GAN's images / videos (``keys=SIVGAN_AVERAGED``)."""
    if len(files) != len(sequences):
        raise ValueError(f"{len(files)} files for {len(sequences)} sequences")
    pools = {seq: read_metric_file(f) for seq, f in zip(sequences, files)}
    record: dict[str, Any] = {"n_sequences": len(sequences), "n_per_metric": {}}
    for key in keys:
        present = [p[key] for p in pools.values() if p.get(key) is not None]
        record["n_per_metric"][key] = len(present)
        if present:  # no number at all -> the key is absent and the table names the file and key
            record[key] = float(sum(present) / len(present))
    record["per_sequence"] = {seq: {k: p.get(k) for k in keys} for seq, p in pools.items()}
    labels = sorted({p.get("provenance", {}).get("weights_label", "") for p in pools.values()} - {""})
    record["provenance"] = {**provenance, "weights_label": " | ".join(labels)}
    write_json(out, record)
    return record


# ------------------------------------------------------------------------------------ SIV-GAN
# Tables 5.1-5.6 (thesis l.1472): SIFID at two Inception layers (mean and best over the samples),
# LPIPS diversity, pixel diversity (Single Image only) and LPIPS to the nearest augmented training image.
SIVGAN_METRICS = ("lpips", "pixel_div", "dist_train")
SIVGAN_DEFINITIONS = {
    "sifid_<k>": "mean over samples of SIFID at the Inception layer mapped to <k> (models.sivgan.evaluation."
                 "sifid_layers: sifid_4 = H*W/4, sifid_16 = H*W/16, thesis l.1472); best_sifid_<k> = the minimum",
    "lpips": "mean LPIPS(alex) over all pairs of generated images",
    "pixel_div": "SinGAN pixel diversity (per-pixel std over the samples / std of the training image)",
    "dist_train": "mean over samples of the LPIPS to the nearest augmented training image",
}


def sivgan_keys(sifid_layers: Mapping[str, int]) -> tuple[str, ...]:
    """The averaged keys of a SIV-GAN pool for a {key: Inception layer} mapping."""
    return tuple(sorted(sifid_layers)) + tuple(f"best_{k}" for k in sorted(sifid_layers)) + SIVGAN_METRICS


def merge_sivgan_pool_metrics(files: Mapping[str, str | Path], sifid_layers: Mapping[str, int], out: str | Path,
                              provenance: Mapping[str, Any]) -> dict[str, Any]:
    """One JSON per SIV-GAN pool from the raw metric files ``files`` = {"sifid", "lpips", "dist_train",
    optionally "pixel_div"}; ``sifid_layers`` maps table keys (sifid_4, sifid_16) to Inception layers."""
    from ..metrics.inception import BLOCK_DIMS

    raw = {name: read_metric_file(path) for name, path in files.items()}
    record: dict[str, Any] = {}
    sifid = raw["sifid"].get("value") or {}
    for key, layer in sifid_layers.items():
        for prefix in ("mean", "best"):
            field = f"{prefix}_sifid_{BLOCK_DIMS[int(layer)]}"
            if field not in sifid:
                raise DataError(files["sifid"], f"no 'value.{field}' (SIFID at layer {layer}) in the file")
            record[key if prefix == "mean" else f"best_{key}"] = _number(sifid[field])
    for key in SIVGAN_METRICS:
        if key in raw:
            record[key] = _number(raw[key].get("value"))
    labels = {k: v.get("weights_label") for k, v in raw.items()}
    record.update({
        "n_samples": len((raw["sifid"].get("details") or {}).get("per_sample", {})) or None,
        "definitions": SIVGAN_DEFINITIONS,
        "sources": {k: str(v) for k, v in files.items()},
        "provenance": {**provenance, "weights_label": "; ".join(f"{k}: {v}" for k, v in labels.items() if v)},
    })
    write_json(out, record)
    return record
