"""Download, verify and extract the external files of the resource manifest.

Only the fetch command line (and the Snakemake ``fetch_<name>`` rules that call it)
uses this module: nothing downloads at import time or inside model/metric code.

Guarantees
----------
* Downloads go to ``<file>.part`` and are **resumed** with HTTP Range requests (a
  server that ignores Range is detected by its 200 answer and the file restarts).
* The result is verified against the manifest (size, sha256, sha256 prefix, sha1,
  md5) before it gets its final name (atomic rename). On a mismatch the partial file
  is deleted and :class:`ChecksumError` is raised.
* An entry without a pinned checksum is refused unless ``allow_unpinned``; then its
  sha256 is recorded in ``<resources>/checksums.lock.yaml`` (trust on first use) and
  later fetches/verifications are checked against that record.
* Archives are verified first, every member is checked (absolute paths, ``..``,
  links leaving the folder, devices: :class:`UnsafeArchiveError` naming the member)
  before anything is written, extracted into a temporary sibling folder and renamed
  into place with a ``.complete`` marker. Re-running after success does nothing.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import http.client
import json
import os
import posixpath
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import yaml

from ..errors import ChecksumError, ConfigError, MissingResourceError, ReproError, UnsafeArchiveError
from ..resources import Manifest, Resource, download_path, marker_path, resource_path
from ..utils.atomic import write_text

LOCK_NAME = "checksums.lock.yaml"
CHUNK = 1 << 20
USER_AGENT = "sushko-thesis-repro-fetch/1 (python urllib)"


class DownloadError(ReproError):
    """All mirrors failed (network error, HTTP error, too many interrupted transfers)."""


class StatusRow(NamedTuple):
    name: str
    state: str  # present | missing | corrupt | unverified
    path: Path


# ----------------------------------------------------------------- checksums
def hash_file(path: str | Path, algos: Iterable[str] = ("sha256",)) -> dict[str, str]:
    """Hex digests of ``path`` for the given hashlib algorithms (one pass)."""
    hs = {a: hashlib.new(a) for a in algos}
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hs.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hs.items()}


def read_lock(resources_dir: str | Path) -> dict[str, dict]:
    """Checksums recorded on first use: {name: {sha256, size_bytes, url, recorded_utc}}."""
    path = Path(resources_dir) / LOCK_NAME
    if not path.is_file():
        return {}
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
    entries = doc.get("entries", {}) if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: expected a mapping with an 'entries' mapping")
    return entries


@contextlib.contextmanager
def _locked(resources_dir: Path):
    """Serialise read-modify-write of the lock file between parallel fetch jobs."""
    resources_dir.mkdir(parents=True, exist_ok=True)
    with open(resources_dir / f".{LOCK_NAME}.flock", "a") as fh:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        yield


def record_lock(resources_dir: str | Path, entry: Resource, sha256: str, size: int, url: str) -> None:
    """Record a trust-on-first-use checksum and print the line to paste into the manifest."""
    root = Path(resources_dir)
    with _locked(root):
        entries = read_lock(root)
        entries[entry.name] = {
            "sha256": sha256,
            "size_bytes": size,
            "url": url,
            "recorded_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        text = (
            "# Checksums recorded on first use by gan_core.data.fetch (--allow-unpinned).\n"
            "# Copy them into workflow/manifests/resources.yaml once you trust the download.\n"
            + yaml.safe_dump({"entries": entries}, sort_keys=True)
        )
        write_text(root / LOCK_NAME, text)
    print(
        f"[fetch] {entry.name}: no checksum was pinned; recorded sha256 in {root / LOCK_NAME}.\n"
        f"[fetch] paste into the manifest entry '{entry.name}':  sha256: {sha256}   size_bytes: {size}",
        file=sys.stderr,
    )


def expected_checksums(entry: Resource, resources_dir: str | Path) -> dict[str, str]:
    """Pins to check: manifest values, else the sha256 recorded on first use."""
    exp = dict(entry.checksums())
    if "sha256" not in exp:
        rec = read_lock(resources_dir).get(entry.name)
        if rec and rec.get("sha256"):
            exp["sha256"] = str(rec["sha256"])
    return exp


def check_file(entry: Resource, path: Path, resources_dir: str | Path) -> str:
    """Verify ``path`` against size and every pinned checksum; return its sha256.

    On a mismatch the file is deleted and ChecksumError is raised.
    """
    size = path.stat().st_size
    if entry.size_bytes is not None and size != entry.size_bytes:
        path.unlink(missing_ok=True)
        raise ChecksumError(path, "size", f"{entry.size_bytes} bytes", f"{size} bytes")
    exp = expected_checksums(entry, resources_dir)
    got = hash_file(path, sorted(set(exp) | {"sha256"}))
    checks = list(exp.items())
    if entry.sha256_prefix:
        checks.append(("sha256_prefix", entry.sha256_prefix))
    for algo, want in checks:
        have = got["sha256"][: len(want)] if algo == "sha256_prefix" else got[algo]
        if have != want.lower():
            path.unlink(missing_ok=True)
            raise ChecksumError(path, algo, want, have)
    return got["sha256"]


# ----------------------------------------------------------------- download
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _content_range(resp) -> tuple[int, int | None] | None:
    m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", "") or "")
    if not m:
        return None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), total


def download(
    url: str,
    part: Path,
    *,
    expected_size: int | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 2.0,
    progress: bool = True,
    desc: str = "",
) -> None:
    """Download ``url`` into ``part``, resuming an existing partial file with Range.

    Interrupted transfers (connection closed, short body, timeouts) are resumed up
    to ``retries`` times. A 200 answer to a Range request means the server ignored
    it: the file restarts from byte 0. Raises DownloadError / urllib errors.
    """
    from tqdm.auto import tqdm

    part.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    last_exc: Exception | None = None
    while True:
        if failures > retries:
            raise DownloadError(f"{url}: download failed after {retries} retries ({last_exc})")
        offset = part.stat().st_size if part.exists() else 0
        if expected_size is not None:
            if offset == expected_size:
                return
            if offset > expected_size:
                part.unlink()
                offset = 0
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        if offset:
            req.add_header("Range", f"bytes={offset}-")
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:
                # Range not satisfiable: the partial file is complete already or longer
                # than the remote file; the verification step decides.
                m = re.search(r"/(\d+)", exc.headers.get("Content-Range", "") or "")
                if m and int(m.group(1)) == offset:
                    return
                part.unlink()
                failures += 1
                last_exc = exc
                continue
            raise
        except urllib.error.URLError as exc:
            # Transient (timeout, reset) -> retry this mirror; refused / DNS -> next mirror.
            if not isinstance(exc.reason, (TimeoutError, ConnectionResetError, ConnectionAbortedError)):
                raise
            failures += 1
            last_exc = exc
            time.sleep(backoff * failures)
            continue
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            failures += 1
            last_exc = exc
            time.sleep(backoff * failures)
            continue
        with resp:
            cr = _content_range(resp) if resp.status == 206 else None
            if offset and resp.status == 206 and cr is not None and cr[0] == offset:
                mode, total = "ab", cr[1]
            else:
                # No range asked, or the server ignored it (200) / answered a different range.
                if offset:
                    print(f"[fetch] {url}: server did not honour Range; restarting from 0", file=sys.stderr)
                offset, mode = 0, "wb"
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            total = total if total is not None else expected_size
            try:
                with open(part, mode) as fh, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=desc or part.name, disable=None if progress else True, leave=False,
                ) as bar:
                    while chunk := resp.read(CHUNK):
                        fh.write(chunk)
                        bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                failures += 1
                last_exc = exc
                time.sleep(backoff * failures)
                continue
        got = part.stat().st_size
        if total is not None and got < total:
            failures += 1
            last_exc = DownloadError(f"short transfer: {got} of {total} bytes")
            time.sleep(backoff * failures)
            continue
        return


# ------------------------------------------------------------------ archives
class _Member(NamedTuple):
    kind: str  # dir | file | symlink | hardlink
    rel: str  # stripped relative path (posix)
    target: str | None  # link target (symlink: as stored; hardlink: stripped member path)
    src: object  # ZipInfo or TarInfo


def _split(name: str, archive: Path, label: str) -> list[str]:
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise UnsafeArchiveError(f"{archive}: member {label!r} has an absolute path")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {label!r} contains '..'")
    return parts


def _strip(parts: list[str], n: int) -> str | None:
    rest = parts[n:]
    return "/".join(rest) if rest else None


def _zip_members(zf: zipfile.ZipFile, archive: Path, strip: int) -> list[_Member]:
    out = []
    for info in zf.infolist():
        mode = info.external_attr >> 16
        rel = _strip(_split(info.filename, archive, info.filename), strip)
        if rel is None:
            continue
        if mode and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a device/fifo/socket")
        if stat.S_ISLNK(mode):
            target = zf.read(info).decode("utf-8", "replace")
            out.append(_Member("symlink", rel, target, info))
        elif info.is_dir():
            out.append(_Member("dir", rel, None, info))
        else:
            out.append(_Member("file", rel, None, info))
    return out


def _tar_members(tf: tarfile.TarFile, archive: Path, strip: int) -> list[_Member]:
    out = []
    for ti in tf.getmembers():
        rel = _strip(_split(ti.name, archive, ti.name), strip)
        if rel is None:
            continue
        if ti.isdir():
            out.append(_Member("dir", rel, None, ti))
        elif ti.isreg():
            out.append(_Member("file", rel, None, ti))
        elif ti.issym():
            out.append(_Member("symlink", rel, ti.linkname, ti))
        elif ti.islnk():
            target = _strip(_split(ti.linkname, archive, f"{ti.name} -> {ti.linkname}"), strip)
            if target is None:
                raise UnsafeArchiveError(f"{archive}: hard link {ti.name!r} points outside the extracted tree")
            out.append(_Member("hardlink", rel, target, ti))
        else:
            raise UnsafeArchiveError(f"{archive}: member {ti.name!r} is a device/fifo or unsupported type")
    return out


def _check_members(members: list[_Member], archive: Path) -> None:
    """Reject links leaving the tree and any path that goes through a symlink."""
    links = {m.rel for m in members if m.kind == "symlink"}
    regular = {m.rel for m in members if m.kind == "file"}

    def through_link(rel: str) -> bool:
        parts = rel.split("/")
        return any("/".join(parts[:i]) in links for i in range(1, len(parts)))

    for m in members:
        if through_link(m.rel):
            raise UnsafeArchiveError(f"{archive}: member {m.rel!r} lies below a symlink member")
        if m.kind == "symlink":
            t = m.target or ""
            if t.startswith("/") or re.match(r"^[A-Za-z]:", t) or "\\" in t:
                raise UnsafeArchiveError(f"{archive}: symlink {m.rel!r} -> {t!r} is absolute")
            joined = posixpath.join(posixpath.dirname(m.rel), t)
            norm = posixpath.normpath(joined)
            if norm == ".." or norm.startswith("../"):
                raise UnsafeArchiveError(f"{archive}: symlink {m.rel!r} -> {t!r} points outside the folder")
            # A target resolved through another link could escape although it looks inside.
            seen: list[str] = []
            for p in joined.split("/"):
                seen.append(p)
                if "/".join(seen) in links:
                    raise UnsafeArchiveError(f"{archive}: symlink {m.rel!r} -> {t!r} goes through a symlink")
        elif m.kind == "hardlink" and m.target not in regular:
            raise UnsafeArchiveError(
                f"{archive}: hard link {m.rel!r} -> {m.target!r} does not point to a regular member"
            )


def _is_zip(path: Path) -> bool:
    return path.name.lower().endswith(".zip") or zipfile.is_zipfile(path)


def safe_members(archive: str | Path, strip_components: int = 0) -> list[_Member]:
    """List and check every member; raise UnsafeArchiveError naming the first bad one."""
    archive = Path(archive)
    try:
        if _is_zip(archive):
            with zipfile.ZipFile(archive) as zf:
                members = _zip_members(zf, archive, strip_components)
        else:
            with tarfile.open(archive, "r:*") as tf:
                members = _tar_members(tf, archive, strip_components)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise UnsafeArchiveError(f"{archive}: not a readable zip/tar archive ({exc})") from exc
    _check_members(members, archive)
    return members


def _extract_into(archive: Path, dest: Path, members: list[_Member]) -> None:
    if _is_zip(archive):
        with zipfile.ZipFile(archive) as zf:
            for m in members:
                out = dest.joinpath(*m.rel.split("/"))
                if m.kind == "dir":
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                if m.kind == "symlink":
                    os.symlink(m.target, out)
                else:
                    with zf.open(m.src) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, CHUNK)
        return
    with tarfile.open(archive, "r:*") as tf:
        renamed = []
        for m in members:
            ti = m.src
            changes = {"name": m.rel}
            if m.kind == "hardlink":
                changes["linkname"] = m.target
            renamed.append(ti.replace(**changes, deep=False))
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        try:
            tf.extractall(dest, members=renamed, **kwargs)
        except tarfile.TarError as exc:  # FilterError from the 'data' filter (second line of defence)
            raise UnsafeArchiveError(f"{archive}: {exc}") from exc


def extract_archive(archive: str | Path, dest: str | Path, strip_components: int = 0, marker: str = "") -> Path:
    """Safely extract ``archive`` to ``dest`` (atomic folder rename, ``.complete`` marker).

    ``dest`` must not exist yet. Nothing is written when a member is unsafe.
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        raise ReproError(f"{dest}: already exists; remove it to extract {archive.name} again")
    members = safe_members(archive, strip_components)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    try:
        _extract_into(archive, tmp, members)
        (tmp / ".complete").write_text(marker or json.dumps({"archive": archive.name}) + "\n")
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


# --------------------------------------------------------------------- fetch
def _marker_text(entry: Resource, sha256: str, size: int, url: str | None) -> str:
    return json.dumps(
        {"name": entry.name, "filename": entry.filename, "sha256": sha256, "size_bytes": size, "url": url},
        sort_keys=True,
    ) + "\n"


def _read_marker(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def is_complete(entry: Resource, resources_dir: str | Path = "resources") -> bool:
    """True when a previous fetch finished (marker present and, for files, the size matches)."""
    mk = marker_path(entry, resources_dir)
    if not mk.is_file():
        return False
    if entry.is_archive:
        return True
    f = resource_path(entry, resources_dir)
    return f.is_file() and _read_marker(mk).get("size_bytes") == f.stat().st_size


def fetch(
    entry: Resource,
    resources_dir: str | Path = "resources",
    allow_unpinned: bool = False,
    *,
    urls: Sequence[str] | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 2.0,
    progress: bool = True,
) -> Path:
    """Download (resumably), verify and, for archives, extract one manifest entry.

    ``urls`` overrides the manifest mirrors (tests, local mirrors). Returns
    :func:`resource_path`. A completed entry is a no-op.
    """
    root = Path(resources_dir)
    final = resource_path(entry, root)
    if entry.manual and not urls:
        if final.exists():
            if entry.filename and entry.extract_to is None and expected_checksums(entry, root):
                check_file(entry, final, root)
            return final
        raise MissingResourceError(f"{entry.kind} '{entry.name}'", final, entry.fetch_target, entry.how_to_get())
    if is_complete(entry, root):
        return final
    if entry.is_archive and final.exists():
        raise ReproError(
            f"{final}: exists without a .complete marker (not created by fetch, or damaged); "
            f"remove it and run the fetch for '{entry.name}' again"
        )
    pinned = entry.pinned or bool(expected_checksums(entry, root))
    if not pinned and not allow_unpinned:
        raise ConfigError(
            f"manifest entry '{entry.name}' has no pinned checksum (sha256/md5/sha1 are null); refusing to "
            "download an unverifiable file. Re-run with --allow-unpinned to record its sha256 on first use "
            f"in {root / LOCK_NAME}, then paste it into workflow/manifests/resources.yaml."
        )
    dl = download_path(entry, root)
    used_url = None
    if dl.exists():  # a verified download from an earlier run (or placed by hand): check it again
        if pinned:
            sha = check_file(entry, dl, root)
        else:
            sha = hash_file(dl)["sha256"]
            record_lock(root, entry, sha, dl.stat().st_size, f"local file {dl}")
    else:
        part = dl.with_name(dl.name + ".part")
        errors = []
        for url in urls or entry.url:
            try:
                download(url, part, expected_size=entry.size_bytes, retries=retries, timeout=timeout,
                         backoff=backoff, progress=progress, desc=entry.name)
                used_url = url
                break
            except (DownloadError, urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                errors.append(f"{url}: {exc}")
        if used_url is None:
            raise DownloadError(
                f"could not download '{entry.name}' from any mirror: " + "; ".join(errors)
                + f". Expected file: {dl}. {entry.notes.strip()}"
            )
        if pinned:
            sha = check_file(entry, part, root)
        else:
            if entry.size_bytes is not None and part.stat().st_size != entry.size_bytes:
                size = part.stat().st_size
                part.unlink()
                raise ChecksumError(part, "size", f"{entry.size_bytes} bytes", f"{size} bytes")
            sha = hash_file(part)["sha256"]
            record_lock(root, entry, sha, part.stat().st_size, used_url)
        os.replace(part, dl)
    size = dl.stat().st_size
    text = _marker_text(entry, sha, size, used_url)
    if entry.is_archive:
        extract_archive(dl, final, entry.strip_components, marker=text)
    else:
        write_text(marker_path(entry, root), text)
    return final


def verify(entry: Resource, resources_dir: str | Path = "resources") -> Path:
    """Re-hash a fetched entry against the manifest / lock; raise on any problem."""
    root = Path(resources_dir)
    final = resource_path(entry, root)
    if not final.exists():
        raise MissingResourceError(f"{entry.kind} '{entry.name}'", final, entry.fetch_target, entry.how_to_get())
    if entry.filename is None:
        return final  # manual folder: nothing to hash
    dl = download_path(entry, root)
    if not (entry.pinned or expected_checksums(entry, root)):
        raise ConfigError(
            f"manifest entry '{entry.name}' has no checksum to verify against (manifest and {LOCK_NAME})"
        )
    if entry.is_archive:
        mk = _read_marker(marker_path(entry, root))
        if not mk:
            raise ReproError(f"{final}: no .complete marker; the extraction did not finish. Fetch again.")
        if not dl.exists():
            print(f"[verify] {entry.name}: archive {dl} was removed; trusting the marker of the extraction",
                  file=sys.stderr)
            return final
    sha = check_file(entry, dl, root)
    if entry.is_archive and mk.get("sha256") not in (None, sha):
        raise ChecksumError(marker_path(entry, root), "sha256 (extracted from)", str(mk.get("sha256")), sha)
    return final


def status(manifest: Manifest, resources_dir: str | Path = "resources", deep: bool = False) -> list[StatusRow]:
    """One row per entry: present | missing | corrupt | unverified (exists, no marker).

    ``deep`` re-hashes files with a pinned checksum instead of trusting markers.
    """
    rows = []
    for name, entry in manifest.items():
        path = resource_path(entry, resources_dir)
        if not path.exists():
            state = "missing"
        elif entry.manual:
            state = "present"
        elif deep and (entry.pinned or expected_checksums(entry, resources_dir)):
            try:
                verify(entry, resources_dir)
                state = "present"
            except ReproError:
                state = "corrupt"
        elif is_complete(entry, resources_dir):
            state = "present"
        elif marker_path(entry, resources_dir).exists():
            state = "corrupt"  # marker disagrees with the file (size changed)
        else:
            state = "unverified"
        rows.append(StatusRow(name, state, path))
    return rows
