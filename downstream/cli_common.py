"""Helpers shared by the downstream command lines (OSVOS, STM)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


from gan_core.errors import ConfigError
from gan_core.utils.cli import run_cli  # noqa: F401  (re-exported: the runner of every command line)
from gan_core.utils.device import resolve_device  # noqa: F401  (re-exported for the command lines)


def parse_params(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    text = text.strip()
    if not text.startswith("{") and Path(text).is_file():
        text = Path(text).read_text()
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--params is not a JSON object: {exc}") from exc
    if not isinstance(params, dict):
        raise ConfigError("--params must be a JSON object")
    return params


def synthetic_settings(params_text: str | None, manifest_arg: str | None) -> tuple[dict[str, Any], Path | None]:
    """Parse --params and --synthetic-manifest together: ``synthetic`` defaults to "a manifest was given",
    and an explicit ``synthetic`` that contradicts the manifest argument is an error."""
    params = parse_params(params_text)
    manifest = None if manifest_arg in (None, "", "none") else Path(manifest_arg)
    if "synthetic" not in params:
        params["synthetic"] = manifest is not None
    elif bool(params["synthetic"]) != (manifest is not None):
        raise ConfigError(f"params.synthetic={params['synthetic']} contradicts --synthetic-manifest {manifest_arg}")
    return params, manifest


def add_run_arguments(parser: argparse.ArgumentParser, out_help: str = "output folder") -> None:
    """--out, --params, --seed, --device: the arguments every downstream job takes."""
    parser.add_argument("--out", required=True, help=out_help)
    parser.add_argument("--params", default="{}", help="JSON object (or .json file) of config overrides")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")


def add_train_split_arguments(parser: argparse.ArgumentParser) -> None:
    """--davis-root and --split-file of the jobs that train on a DAVIS-format train split."""
    parser.add_argument("--davis-root", required=True)
    parser.add_argument("--split-file", required=True, help="text file, one train sequence per line")
