"""Provenance recorded with every result row: config hash, seed, git commit, versions."""
from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from pathlib import Path
from typing import Any, Mapping

REPO_ROOT = Path(__file__).resolve().parents[1]


def config_hash(obj: Any) -> str:
    """A short, stable hash of a JSON-serialisable object (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The current commit of the repository (``+dirty`` if the tree has changes), or 'unknown'."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(params: Mapping[str, Any] | None = None, seed: int | None = None, preset: str | None = None) -> dict:
    """The provenance record attached to outputs and metric rows."""
    import torch

    return {
        "config_hash": config_hash(params or {}),
        "seed": seed,
        "preset": preset,
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
