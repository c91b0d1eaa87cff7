"""Local weight files of the metric networks: resolve, check, never download.

Every metric network names a manifest entry (``workflow/manifests/resources.yaml``):

=====================  ===============================  ==============================
entry                  file                             used by
=====================  ===============================  ==============================
``fid_inception``      pt_inception-2015-12-05-…pth     FID (pytorch-fid network)
``tv_inception_v3``    inception_v3_google-0cc3c7bd.pth SIFID (torchvision network)
``tv_alexnet``         alexnet-owt-7be5be79.pth         LPIPS(alex) trunk
``tv_vgg16``           vgg16-397923af.pth               LPIPS(vgg) trunk, intra-LPIPS
=====================  ===============================  ==============================

A file fetched by ``gan_core.data.fetch`` carries a ``.complete`` marker and is trusted; a file
placed by hand is hashed here (without deleting it) against the manifest's pinned checksum or
sha256 prefix. A missing file raises :class:`~gan_core.errors.MissingResourceError` naming the
Snakemake target ``fetch_<entry>``.
"""
from __future__ import annotations

from pathlib import Path

from ..data import fetch
from ..errors import DataError, MissingResourceError
from ..resources import Manifest, load_manifest, require

METRIC_WEIGHTS = {
    "fid": "fid_inception",
    "sifid": "tv_inception_v3",
    "lpips_alex": "tv_alexnet",
    "lpips_vgg": "tv_vgg16",
}


def resolve_weights(entry_name: str, resources_dir: str | Path = "resources",
                    manifest: Manifest | None = None) -> Path:
    """The checked local path of a weights entry (MissingResourceError / DataError otherwise)."""
    manifest = manifest if manifest is not None else load_manifest()
    entry = manifest[entry_name]
    path = require(entry, resources_dir, manifest=manifest)
    if fetch.is_complete(entry, resources_dir):
        return path
    expected = fetch.expected_checksums(entry, resources_dir)
    got = fetch.hash_file(path, sorted(set(expected) | {"sha256"}))
    checks = list(expected.items())
    if entry.sha256_prefix:
        checks.append(("sha256_prefix", entry.sha256_prefix))
    for algo, want in checks:
        have = got["sha256"][: len(want)] if algo == "sha256_prefix" else got[algo]
        if have != want.lower():
            raise DataError(
                path, f"{algo} {have} does not match the manifest pin {want} of entry '{entry.name}'; "
                f"replace the file (snakemake --cores 1 {entry.fetch_target})",
            )
    return path


def weights_from_option(option: str, entry_name: str, resources_dir: str | Path = "resources") -> Path | None:
    """CLI ``--weights`` value: 'manifest' (resolve the entry), 'none' (random init, tiny only) or a path."""
    if option == "manifest":
        return resolve_weights(entry_name, resources_dir)
    if option.lower() == "none":
        return None
    path = Path(option)
    if not path.is_file():
        raise MissingResourceError(f"weights file for '{entry_name}'", path, f"fetch_{entry_name}")
    return path


__all__ = ["METRIC_WEIGHTS", "resolve_weights", "weights_from_option"]
