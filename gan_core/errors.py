"""Exceptions that carry enough context for a researcher to act on them.

Every error names the file (or config key) and the problem; the ones about
missing external files also name the workflow target that fetches them.
"""
from __future__ import annotations

from pathlib import Path


class ReproError(Exception):
    """Base class of all errors raised on purpose by this project."""


class ConfigError(ReproError):
    """The configuration is invalid (unknown key, bad value, unknown preset)."""


class DataError(ReproError):
    """An input file exists but is unusable (unreadable, wrong size, empty mask ...)."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class MissingResourceError(ReproError):
    """An external file (dataset, weights) is not present where expected."""

    def __init__(self, what: str, path: str | Path, fetch_target: str | None = None, hint: str = ""):
        self.what = what
        self.path = Path(path)
        self.fetch_target = fetch_target
        msg = f"{what} is missing: expected {self.path}."
        if fetch_target:
            msg += f" Fetch it with: snakemake --cores 1 {fetch_target}"
        if hint:
            msg += f" {hint}"
        super().__init__(msg)


class ChecksumError(ReproError):
    """A downloaded or provided file does not have the pinned checksum."""

    def __init__(self, path: str | Path, algo: str, expected: str, actual: str):
        self.path = Path(path)
        super().__init__(
            f"{self.path}: {algo} checksum mismatch (expected {expected}, got {actual}). "
            "The file was removed; fetch it again or check the manifest entry."
        )


class UnsafeArchiveError(ReproError):
    """An archive member would land outside the extraction folder, or is a link/device."""
