"""Resource manifest, resumable verified downloads and safe extraction.

A real HTTP server on 127.0.0.1 (random free port, in a thread) serves fixture
archives built in a temporary folder; no external network is used.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import os
import re
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
import yaml

from gan_core.data import fetch as F
from gan_core.data import fetch_cli
from gan_core.errors import ChecksumError, ConfigError, MissingResourceError, UnsafeArchiveError
from gan_core.resources import Resource, load_manifest, marker_path, require, resource_path


# ----------------------------------------------------------------- server
class _State:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.honour_range = True
        self.cut_next = 0  # number of next responses to cut in the middle
        self.log: list[tuple[str, str | None]] = []


class _Handler(http.server.BaseHTTPRequestHandler):
    state: _State
    timeout = 10

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        st = self.state
        rng = self.headers.get("Range")
        st.log.append((self.path, rng))
        data = st.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, code = 0, 200
        m = re.match(r"bytes=(\d+)-$", rng or "")
        if m and st.honour_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            code = 206
        body = data[start:]
        self.send_response(code)
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if st.cut_next > 0:
            st.cut_next -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    state = _State()
    handler = type("H", (_Handler,), {"state": state})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(timeout=5)


# ----------------------------------------------------------------- fixtures
def _payload() -> bytes:
    return hashlib.sha256(b"seed").digest() * 8000  # 256 kB, deterministic


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


GOOD_ZIP = _zip_bytes({"DATA/a.txt": b"hello", "DATA/sub/b.bin": _payload()})


def _entry(**kw) -> Resource:
    base = dict(name="toy", kind="dataset", licence="CC0 (test fixture)", url=["http://unused.invalid/x"],
                filename="toy.zip", extract_to="toy", strip_components=1)
    base.update(kw)
    return Resource.from_dict(base, where="test")


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


FAST = dict(retries=3, timeout=5.0, backoff=0.0, progress=False)


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ----------------------------------------------------------------- tests
def test_good_zip_extracted_marker_then_noop(server, tmp_path):
    server.files["/toy.zip"] = GOOD_ZIP
    e = _entry(sha256=_sha(GOOD_ZIP), size_bytes=len(GOOD_ZIP))
    out = F.fetch(e, tmp_path, urls=[server.base + "/toy.zip"], **FAST)
    assert out == tmp_path / "toy" == resource_path(e, tmp_path)
    assert (out / "a.txt").read_bytes() == b"hello"  # strip_components=1 removed DATA/
    assert (out / "sub" / "b.bin").read_bytes() == _payload()
    mk = marker_path(e, tmp_path)
    assert mk.is_file() and _sha(GOOD_ZIP) in mk.read_text()
    n = len(server.log)
    assert F.fetch(e, tmp_path, urls=[server.base + "/toy.zip"], **FAST) == out
    assert len(server.log) == n  # second run: no request at all
    assert F.verify(e, tmp_path) == out
    assert [r.state for r in F.status({"toy": e}, tmp_path)] == ["present"]
    assert not list(tmp_path.glob("**/*.part")) and not list(tmp_path.glob(".toy.extract-*"))


def test_plain_file_with_md5_and_sha256_prefix(server, tmp_path):
    data = _payload()
    server.files["/w.pth"] = data
    e = _entry(kind="weights", filename="w-abc.pth", extract_to=None, strip_components=0,
               md5=hashlib.md5(data).hexdigest(), sha256_prefix=_sha(data)[:8])
    out = F.fetch(e, tmp_path, urls=[server.base + "/w.pth"], **FAST)
    assert out == tmp_path / "w-abc.pth" and out.read_bytes() == data
    assert marker_path(e, tmp_path).is_file()
    bad = _entry(name="toy2", kind="weights", filename="w2.pth", extract_to=None, strip_components=0,
                 sha256_prefix="deadbeef")
    with pytest.raises(ChecksumError, match="sha256_prefix"):
        F.fetch(bad, tmp_path, urls=[server.base + "/w.pth"], **FAST)
    assert not (tmp_path / "w2.pth").exists() and not (tmp_path / "w2.pth.part").exists()


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    server.files["/toy.zip"] = GOOD_ZIP
    e = _entry(sha256="0" * 64)
    with pytest.raises(ChecksumError, match="sha256 checksum mismatch"):
        F.fetch(e, tmp_path, urls=[server.base + "/toy.zip"], **FAST)
    assert _leftovers(tmp_path) == []
    assert not (tmp_path / "toy").exists()
    assert [r.state for r in F.status({"toy": e}, tmp_path)] == ["missing"]


def test_size_mismatch_is_a_checksum_error(server, tmp_path):
    server.files["/toy.zip"] = GOOD_ZIP
    e = _entry(sha256=_sha(GOOD_ZIP), size_bytes=len(GOOD_ZIP) + 1)
    with pytest.raises(ChecksumError):
        F.fetch(e, tmp_path, urls=[server.base + "/toy.zip"], **FAST)
    assert _leftovers(tmp_path) == []


def test_interrupted_download_is_resumed_with_range(server, tmp_path):
    server.files["/toy.zip"] = GOOD_ZIP
    server.cut_next = 1  # the first response stops after half of the body
    e = _entry(sha256=_sha(GOOD_ZIP))
    out = F.fetch(e, tmp_path, urls=[server.base + "/toy.zip"], **FAST)
    assert (out / "sub" / "b.bin").read_bytes() == _payload()
    ranges = [r for _, r in server.log]
    assert ranges[0] is None
    assert ranges[1] == f"bytes={len(GOOD_ZIP) // 2}-"  # continued where the cut happened
    assert len(ranges) == 2


def test_existing_part_file_is_continued(server, tmp_path):
    server.files["/toy.zip"] = GOOD_ZIP
    part = tmp_path / "downloads" / "toy.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(GOOD_ZIP[:1000])
    e = _entry(sha256=_sha(GOOD_ZIP))
    F.fetch(e, tmp_path, urls=[server.base + "/toy.zip"], **FAST)
    assert server.log == [("/toy.zip", "bytes=1000-")]
    assert (tmp_path / "downloads" / "toy.zip").read_bytes() == GOOD_ZIP


def test_server_ignoring_range_restarts(server, tmp_path):
    server.files["/toy.zip"] = GOOD_ZIP
    server.honour_range = False
    part = tmp_path / "downloads" / "toy.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"X" * 1000)  # garbage: appending the full body would corrupt the file
    e = _entry(sha256=_sha(GOOD_ZIP))
    out = F.fetch(e, tmp_path, urls=[server.base + "/toy.zip"], **FAST)
    assert server.log[0][1] == "bytes=1000-"  # it asked, the server answered 200
    assert (tmp_path / "downloads" / "toy.zip").read_bytes() == GOOD_ZIP
    assert (out / "a.txt").read_bytes() == b"hello"


def test_complete_part_answered_416_is_verified(server, tmp_path):
    server.files["/toy.zip"] = GOOD_ZIP
    part = tmp_path / "downloads" / "toy.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(GOOD_ZIP)
    F.fetch(_entry(sha256=_sha(GOOD_ZIP)), tmp_path, urls=[server.base + "/toy.zip"], **FAST)
    assert server.log == [("/toy.zip", f"bytes={len(GOOD_ZIP)}-")]
    assert (tmp_path / "toy" / "a.txt").is_file()


def test_zip_slip_rejected_nothing_extracted(server, tmp_path):
    evil = _zip_bytes({"ok.txt": b"fine", "../evil.txt": b"pwned"})
    server.files["/evil.zip"] = evil
    res = tmp_path / "res"
    e = _entry(sha256=_sha(evil), strip_components=0, filename="evil.zip")
    with pytest.raises(UnsafeArchiveError, match=r"\.\./evil\.txt"):
        F.fetch(e, res, urls=[server.base + "/evil.zip"], **FAST)
    assert not (res / "toy").exists()
    assert not (tmp_path / "evil.txt").exists() and not (res / "evil.txt").exists()
    assert not list(res.glob(".toy.extract-*"))


def _tar(tmp_path: Path, build) -> Path:
    path = tmp_path / "t.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        ok = tarfile.TarInfo("top/ok.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        build(tf)
    return path


def _sym(name, target, kind=tarfile.SYMTYPE):
    def build(tf):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.linkname = target
        tf.addfile(ti)
    return build


def _abs(tf):
    ti = tarfile.TarInfo("/abs.txt")
    ti.size = 3
    tf.addfile(ti, io.BytesIO(b"abc"))


@pytest.mark.parametrize(
    "build, member",
    [
        (_abs, "/abs.txt"),
        (_sym("top/link", "../../outside"), "top/link"),
        (_sym("top/link", "/etc/passwd"), "top/link"),
        (_sym("top/hl", "../escape", tarfile.LNKTYPE), "top/hl"),
        (_sym("top/dev", "", tarfile.CHRTYPE), "top/dev"),
    ],
    ids=["absolute", "symlink-up", "symlink-absolute", "hardlink-up", "device"],
)
def test_unsafe_tar_rejected(tmp_path, build, member):
    archive = _tar(tmp_path, build)
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as ei:
        F.extract_archive(archive, dest)
    assert member in str(ei.value)
    assert not dest.exists() and not list(tmp_path.glob(".out.extract-*"))


def test_symlink_chain_escape_rejected(tmp_path):
    # d -> . is harmless alone, but e -> d/.. would resolve to the parent of the folder.
    def build(tf):
        _sym("top/d", ".")(tf)
        _sym("top/e", "d/..")(tf)
    with pytest.raises(UnsafeArchiveError, match="top/e"):
        F.extract_archive(_tar(tmp_path, build), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_safe_tar_with_inner_symlink_and_strip(tmp_path):
    archive = _tar(tmp_path, _sym("top/alias.txt", "ok.txt"))
    dest = F.extract_archive(archive, tmp_path / "out", strip_components=1, marker="m\n")
    assert (dest / "ok.txt").read_bytes() == b"ok"
    assert (dest / "alias.txt").is_symlink() and (dest / "alias.txt").read_bytes() == b"ok"
    assert (dest / ".complete").read_text() == "m\n"


def test_unpinned_refused_then_recorded(server, tmp_path, capsys):
    server.files["/toy.zip"] = GOOD_ZIP
    e = _entry()  # no checksum at all
    with pytest.raises(ConfigError, match="allow-unpinned"):
        F.fetch(e, tmp_path, urls=[server.base + "/toy.zip"], **FAST)
    assert server.log == []  # refused before any network access
    F.fetch(e, tmp_path, allow_unpinned=True, urls=[server.base + "/toy.zip"], **FAST)
    lock = yaml.safe_load((tmp_path / F.LOCK_NAME).read_text())
    assert lock["entries"]["toy"]["sha256"] == _sha(GOOD_ZIP)
    assert lock["entries"]["toy"]["size_bytes"] == len(GOOD_ZIP)
    assert f"sha256: {_sha(GOOD_ZIP)}" in capsys.readouterr().err
    assert F.verify(e, tmp_path) == tmp_path / "toy"
    # Trust on first use: a later download of different bytes is now rejected.
    other = tmp_path / "other"
    (other).mkdir()
    (other / F.LOCK_NAME).write_text((tmp_path / F.LOCK_NAME).read_text())
    server.files["/toy.zip"] = _zip_bytes({"DATA/a.txt": b"tampered"})
    with pytest.raises(ChecksumError):
        F.fetch(e, other, urls=[server.base + "/toy.zip"], **FAST)
    assert not (other / "toy").exists()


def test_missing_resource_names_fetch_target(tmp_path):
    e = _entry(url=["https://example.org/toy.zip"])
    with pytest.raises(MissingResourceError) as ei:
        require(e, tmp_path)
    msg = str(ei.value)
    assert "fetch_toy" in msg and "https://example.org/toy.zip" in msg and str(tmp_path / "toy") in msg
    manual = _entry(name="manual_thing", url=None, filename=None, extract_to="manual_thing",
                    notes="Download it from the vendor page and unzip into resources/manual_thing.")
    with pytest.raises(MissingResourceError, match="vendor page") as ei:
        F.fetch(manual, tmp_path)
    assert "fetch_manual_thing" in str(ei.value)
    (tmp_path / "manual_thing").mkdir()
    assert require(manual, tmp_path) == tmp_path / "manual_thing"


def test_all_mirrors_failing(server, tmp_path):
    e = _entry(sha256=_sha(GOOD_ZIP))
    with pytest.raises(F.DownloadError, match="any mirror"):
        F.fetch(e, tmp_path, urls=[server.base + "/nope.zip", server.base + "/nope2.zip"], **FAST)
    assert [p for p, _ in server.log] == ["/nope.zip", "/nope2.zip"]


def test_manifest_parses_and_is_complete():
    m = load_manifest()
    required = {"davis2017_trainval_480p", "davis2016", "osvos_parent", "tv_inception_v3", "fid_inception",
                "tv_alexnet", "tv_vgg16", "tv_resnet18", "stm_weights", "repri_coco_checkpoints",
                "coco2014_val_images", "coco2014_annotations"}
    assert required <= set(m)
    for name, e in m.items():
        assert e.licence.strip(), name
        assert e.url or e.notes.strip(), name
        if e.sha256_prefix:  # torchvision / pytorch-fid convention: name suffix = sha256 prefix
            assert Path(e.filename).stem.endswith(e.sha256_prefix), name
    # Values stated in the reference notes, nothing else.
    assert m["davis2016"].md5 == "0cb3cf9c5617209fa3cc4794e52a2ffa"
    assert m["tv_inception_v3"].url == ("https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",)
    assert len(m["davis2017_trainval_480p"].url) == 2
    assert m["repri_coco_checkpoints"].manual and "icloud" in m["repri_coco_checkpoints"].notes.lower()
    assert all(e.sha256 is None for e in m.values())  # no full sha256 is known from a source yet


def test_manifest_rejects_unknown_field(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump({"resources": [dict(name="abc", kind="weights", licence="x", url=["https://a/b"],
                                                    filename="b.pth", checksum="123")]}))
    with pytest.raises(ConfigError, match=r"'abc'.*checksum"):
        load_manifest(p)
    p.write_text(yaml.safe_dump({"resources": [dict(name="abc", kind="weights", licence="x", url=None,
                                                    filename="b.pth")]}))
    with pytest.raises(ConfigError, match="manual instructions"):
        load_manifest(p)


def test_cli_fetch_status_verify(server, tmp_path, capsys):
    server.files["/toy.zip"] = GOOD_ZIP
    man = tmp_path / "m.yaml"
    man.write_text(yaml.safe_dump({"version": 1, "resources": [dict(
        name="toy", kind="dataset", licence="CC0", url=["http://127.0.0.1:9/unreachable.zip"],
        filename="toy.zip", sha256=_sha(GOOD_ZIP), extract_to="toy", strip_components=1)]}))
    res = str(tmp_path / "res")
    assert fetch_cli.main(["--manifest", str(man), "status", "--resources", res]) == 0
    assert "missing" in capsys.readouterr().out
    rc = fetch_cli.main(["--manifest", str(man), "verify", "toy", "--resources", res])
    err = capsys.readouterr().err
    assert rc == 1 and "fetch_toy" in err and "unreachable.zip" in err
    assert fetch_cli.main(["--manifest", str(man), "fetch", "toy", "--resources", res, "--no-progress",
                           "--url-override", server.base + "/toy.zip"]) == 0
    assert fetch_cli.main(["--manifest", str(man), "verify", "toy", "--resources", res]) == 0
    capsys.readouterr()
    assert fetch_cli.main(["--manifest", str(man), "status", "--resources", res, "--deep"]) == 0
    assert re.search(r"toy\s+present", capsys.readouterr().out)
    os.remove(Path(res) / "toy" / ".complete")
    assert fetch_cli.main(["--manifest", str(man), "status", "--resources", res]) == 0
    assert "unverified" in capsys.readouterr().out
