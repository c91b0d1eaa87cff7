"""The manifest of external files (datasets, third-party weights) and where they live.

The manifest (``workflow/manifests/resources.yaml``) lists every file the workflow can
fetch, with its mirrors, pinned checksums (only values stated by a source; unknown
values are ``null``), licence and extraction settings. This module only reads and
validates it and resolves local paths; downloading is ``gan_core.data.fetch``.

Local layout under ``resources_dir`` (default ``resources/``):

* plain files (weights):   ``<resources>/<filename>`` and a marker ``<filename>.complete``
* archives (datasets):     ``<resources>/downloads/<filename>`` extracted to
                           ``<resources>/<extract_to>/`` with a marker ``.complete`` inside
* manual entries (no URL): ``<resources>/<extract_to or filename>`` placed by the user
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Mapping

import yaml

from .errors import ConfigError, MissingResourceError

DEFAULT_MANIFEST = Path(__file__).resolve().parents[1] / "workflow" / "manifests" / "resources.yaml"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
KINDS = ("dataset", "weights")
_HEX_LEN = {"sha256": 64, "sha1": 40, "md5": 32}
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_HEX_RE = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True)
class Resource:
    """One manifest entry (see the field list at the top of the manifest)."""

    name: str
    kind: str
    licence: str
    url: tuple[str, ...] = ()
    filename: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    sha1: str | None = None
    md5: str | None = None
    used_by: tuple[str, ...] = ()
    extract_to: str | None = None
    strip_components: int = 0
    notes: str = ""

    # ------------------------------------------------------------------ derived
    @property
    def manual(self) -> bool:
        """True when there is no URL: the user must place the file(s) by hand."""
        return not self.url

    @property
    def is_archive(self) -> bool:
        """True for a downloadable archive that is extracted into ``extract_to``."""
        return self.filename is not None and self.extract_to is not None

    @property
    def fetch_target(self) -> str:
        """The Snakemake target that fetches this entry."""
        return f"fetch_{self.name}"

    def checksums(self) -> dict[str, str]:
        """Full checksums pinned in the manifest: {algo: hex}."""
        return {a: getattr(self, a) for a in ("sha256", "sha1", "md5") if getattr(self, a)}

    @property
    def pinned(self) -> bool:
        """True when the manifest pins a checksum (a sha256 prefix counts, as in torch.hub)."""
        return bool(self.checksums() or self.sha256_prefix)

    def how_to_get(self) -> str:
        """One paragraph telling a user where the file comes from."""
        if self.manual:
            return f"Manual download: {self.notes.strip()}"
        return f"Source URL(s): {', '.join(self.url)}."

    # ------------------------------------------------------------- validation
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "manifest") -> "Resource":
        """Build and validate an entry; every problem raises ConfigError naming the entry."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: an entry must be a mapping, got {type(data).__name__}")
        name = data.get("name")
        label = f"{where}: entry {name!r}"
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(f"{label}: unknown field(s) {unknown}; allowed: {sorted(allowed)}")
        for req in ("name", "kind", "licence"):
            if not data.get(req):
                raise ConfigError(f"{label}: field {req!r} is required")
        kw = dict(data)
        kw["url"] = _as_tuple(data.get("url"), label, "url")
        kw["used_by"] = _as_tuple(data.get("used_by"), label, "used_by")
        kw["notes"] = str(data.get("notes") or "")
        kw["strip_components"] = data.get("strip_components") or 0
        entry = cls(**kw)
        entry._validate(label)
        return entry

    def _validate(self, label: str) -> None:
        if not _NAME_RE.match(self.name):
            raise ConfigError(f"{label}: name must match {_NAME_RE.pattern}")
        if self.kind not in KINDS:
            raise ConfigError(f"{label}: kind must be one of {KINDS}, got {self.kind!r}")
        for u in self.url:
            if not u.startswith(("http://", "https://")):
                raise ConfigError(f"{label}: url {u!r} must be http(s)")
        if self.manual and not self.notes.strip():
            raise ConfigError(f"{label}: an entry without url needs notes with manual instructions")
        if self.filename is not None:
            if "/" in self.filename or "\\" in self.filename or self.filename in (".", ".."):
                raise ConfigError(f"{label}: filename must be a plain file name, got {self.filename!r}")
        elif not self.manual:
            raise ConfigError(f"{label}: a downloadable entry needs a filename")
        elif not self.extract_to:
            raise ConfigError(f"{label}: a manual entry needs a filename or an extract_to folder")
        if self.extract_to is not None:
            p = PurePosixPath(self.extract_to)
            if p.is_absolute() or ".." in p.parts or not p.parts or self.extract_to in ("downloads",):
                raise ConfigError(f"{label}: extract_to must be a relative folder, got {self.extract_to!r}")
            if self.filename and not self.manual and not self.filename.lower().endswith(ARCHIVE_SUFFIXES):
                raise ConfigError(
                    f"{label}: extract_to is set but {self.filename!r} is not an archive {ARCHIVE_SUFFIXES}"
                )
        if not isinstance(self.strip_components, int) or self.strip_components < 0:
            raise ConfigError(f"{label}: strip_components must be an integer >= 0")
        if self.size_bytes is not None and (not isinstance(self.size_bytes, int) or self.size_bytes <= 0):
            raise ConfigError(f"{label}: size_bytes must be a positive integer or null")
        for algo, n in _HEX_LEN.items():
            val = getattr(self, algo)
            if val is not None and (not isinstance(val, str) or len(val) != n or not _HEX_RE.match(val)):
                raise ConfigError(f"{label}: {algo} must be {n} lowercase hex digits or null")
        pre = self.sha256_prefix
        if pre is not None and (not isinstance(pre, str) or not 6 <= len(pre) <= 64 or not _HEX_RE.match(pre)):
            raise ConfigError(f"{label}: sha256_prefix must be 6-64 lowercase hex digits")
        if pre and self.sha256 and not self.sha256.startswith(pre):
            raise ConfigError(f"{label}: sha256 does not start with sha256_prefix {pre}")
        if not str(self.licence).strip():
            raise ConfigError(f"{label}: licence must not be empty")


def _as_tuple(value: Any, label: str, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{label}: {field} must be a string, a list of strings or null")


class Manifest(Mapping[str, Resource]):
    """Entries by name, in file order."""

    def __init__(self, entries: list[Resource], path: Path | None = None):
        self.path = path
        self._entries: dict[str, Resource] = {}
        for e in entries:
            if e.name in self._entries:
                raise ConfigError(f"{path or 'manifest'}: duplicate entry {e.name!r}")
            self._entries[e.name] = e

    def __getitem__(self, name: str) -> Resource:
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"{self.path or 'manifest'}: no resource named {name!r}; known: {sorted(self._entries)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read and validate the manifest (default: workflow/manifests/resources.yaml)."""
    path = Path(path) if path is not None else DEFAULT_MANIFEST
    if not path.is_file():
        raise ConfigError(f"{path}: resource manifest not found")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("resources"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'resources' list")
    extra = sorted(set(doc) - {"version", "resources"})
    if extra:
        raise ConfigError(f"{path}: unknown top-level key(s) {extra}")
    entries = [Resource.from_dict(d, where=str(path)) for d in doc["resources"]]
    return Manifest(entries, path)


def _entry(name: str | Resource, manifest: Manifest | None) -> Resource:
    if isinstance(name, Resource):
        return name
    return (manifest if manifest is not None else load_manifest())[name]


def download_path(entry: Resource, resources_dir: str | Path = "resources") -> Path:
    """Where the downloaded file itself is kept (archives under ``downloads/``)."""
    root = Path(resources_dir)
    if entry.filename is None:
        raise ConfigError(f"entry {entry.name!r} has no filename (manual folder entry)")
    return root / "downloads" / entry.filename if entry.is_archive else root / entry.filename


def marker_path(entry: Resource, resources_dir: str | Path = "resources") -> Path:
    """The ``.complete`` marker written after a verified fetch (a good Snakemake output)."""
    root = Path(resources_dir)
    if entry.extract_to is not None:
        return root / entry.extract_to / ".complete"
    return root / f"{entry.filename}.complete"


def resource_path(
    name: str | Resource, resources_dir: str | Path = "resources", manifest: Manifest | None = None
) -> Path:
    """The usable path of an entry: the extracted folder for archives, else the file."""
    entry = _entry(name, manifest)
    root = Path(resources_dir)
    if entry.extract_to is not None:
        return root / entry.extract_to
    return root / str(entry.filename)


def require(
    name: str | Resource,
    resources_dir: str | Path = "resources",
    fetch_target: str | None = None,
    manifest: Manifest | None = None,
) -> Path:
    """Return :func:`resource_path` if it exists, else raise MissingResourceError.

    The error names the Snakemake fetch target (default ``fetch_<name>``) and the URL
    or the manual instructions. Nothing is downloaded here.
    """
    entry = _entry(name, manifest)
    path = resource_path(entry, resources_dir)
    if path.exists():
        return path
    what = f"{entry.kind} '{entry.name}'"
    hint = entry.how_to_get()
    if not entry.manual:
        hint += (
            f" Or: python -m gan_core.data.fetch_cli fetch {entry.name} --resources {resources_dir}"
        )
    raise MissingResourceError(what, path, fetch_target or entry.fetch_target, hint)
