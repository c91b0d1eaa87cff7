"""Merge the per-pool synthesis metrics of OSMIS (Tables 6.1-6.4) and average them over sequences.

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


def merge_pool_metrics(sifid_file: str | Path, lpips_file: str | Path, mask_file: str | Path,
                       out: str | Path, provenance: Mapping[str, Any]) -> dict[str, Any]:
    """One JSON per pool: sifid (layer 0 mean), lpips (mean pairwise), miou (+ thresholded score)."""
    sifid, lpips, mask = (read_metric_file(p) for p in (sifid_file, lpips_file, mask_file))
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
        "sources": {"sifid": str(sifid_file), "lpips": str(lpips_file), "mask_alignment": str(mask_file)},
        "provenance": {**provenance,
                       "weights_label": "; ".join(f"{k}: {v}" for k, v in labels.items() if v)},
    }
    write_json(out, record)
    return record


def average_over_sequences(files: Sequence[str | Path], sequences: Sequence[str], out: str | Path,
                           provenance: Mapping[str, Any]) -> dict[str, Any]:
    """Mean of every metric over the sequences (a metric missing in a pool is left out and counted)."""
    if len(files) != len(sequences):
        raise ValueError(f"{len(files)} files for {len(sequences)} sequences")
    pools = {seq: read_metric_file(f) for seq, f in zip(sequences, files)}
    record: dict[str, Any] = {"n_sequences": len(sequences), "n_per_metric": {}}
    for key in AVERAGED:
        present = [p[key] for p in pools.values() if p.get(key) is not None]
        record["n_per_metric"][key] = len(present)
        if present:  # no number at all -> the key is absent and the table names the file and key
            record[key] = float(sum(present) / len(present))
    record["per_sequence"] = {seq: {k: p.get(k) for k in AVERAGED} for seq, p in pools.items()}
    labels = sorted({p.get("provenance", {}).get("weights_label", "") for p in pools.values()} - {""})
    record["provenance"] = {**provenance, "weights_label": " | ".join(labels)}
    write_json(out, record)
    return record
