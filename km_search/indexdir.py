"""The index directory: its files, its manifest, and the atomic swap.

Layout of one build (``$KM_SEARCH_HOME/index.d/<build>/``)::

    manifest.json   model, dimension, tokenizer, chunking, counts, sha256 of each file
    passages.db     SQLite: passages (pid, doc_id, ordinal, text, tokens, doc metadata)
    vectors.faiss   FAISS index, ids = pid
    bm25/           bm25s state + pids.npy

``$KM_SEARCH_HOME/index`` is a symlink to the live build. A new build is written
beside it, then the symlink is replaced with os.replace (atomic on POSIX): readers
see the old index or the new one, never half of either, and a build killed midway
leaves only a ``*.tmp`` folder that the next run deletes.

Superseded builds are deleted only when no reader can still hold them: every process
that serves a build *pins* it (a shared ``flock`` on ``<build>/.readers``, held while
the build is loaded and for one reload after it), and :func:`cleanup` skips a build
whose pin it cannot take exclusively, and every build for ``grace`` seconds after a swap
(a reader may be between resolving the symlink and pinning).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from km_search.atomic import fsync_dir, write_atomic

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# The one place the build's file names are spelled (backends add their own files).
PASSAGES = "passages.db"
VECTORS = "vectors.faiss"  # local backend: FAISS
BM25 = "bm25"  # local backend: bm25s folder
MILVUS_LITE = "milvus.db"  # milvus backend without a server URI: Milvus Lite file
PIN = ".readers"  # flock target of readers; not part of the build's checksummed files
HASH_LIMIT = 512 * 1024 * 1024  # verify_build hashes builds up to this size


class IndexError_(Exception):
    """Base for index problems that the CLI reports without a traceback."""


class IndexMissing(IndexError_):
    pass


class IndexCorrupt(IndexError_):
    pass


class IndexMismatch(IndexError_):
    pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if MILVUS_LITE in p.relative_to(folder).parts:
            continue  # Milvus Lite's own data folder: the engine rewrites its lock and logs
        if p.is_file() and p.name not in (MANIFEST, PIN):
            out[str(p.relative_to(folder))] = sha256_file(p)
    return out


def read_manifest(folder: Path, verify: bool = False) -> dict[str, Any]:
    """Load and sanity-check a build's manifest; raise a clear error if broken."""
    if not folder.exists():
        raise IndexMissing(f"no index at {folder}: run `km-search index` first")
    path = folder / MANIFEST
    try:
        man = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorrupt(f"index at {folder} has no {MANIFEST}: rebuild with "
                           "`km-search index --rebuild`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IndexCorrupt(f"index manifest {path} is unreadable ({e}): rebuild with "
                           "`km-search index --rebuild`") from None
    if man.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(f"index format {man.get('format_version')} is not "
                            f"{FORMAT_VERSION}: rebuild with `km-search index --rebuild`")
    for name, digest in man.get("files", {}).items():
        f = folder / name
        if not f.exists():
            raise IndexCorrupt(f"index file {f} is missing: rebuild with `km-search index --rebuild`")
        if verify and sha256_file(f) != digest:
            raise IndexCorrupt(f"index file {f} does not match its checksum: rebuild with "
                               "`km-search index --rebuild`")
    return man


def verify_build(folder: Path, hash_limit: int = HASH_LIMIT) -> dict[str, Any]:
    """Check a build before trusting it for an incremental update; IndexCorrupt says why.

    Cheap checks always (every listed file present, sizes as written in the manifest, the
    passage count in passages.db); the sha256 of every file when the build is at most
    ``hash_limit`` bytes (a byte flip keeps sizes and counts; hashing 512 MB takes ~2 s).
    """
    man = read_manifest(folder)
    files, sizes = man.get("files", {}), man.get("sizes", {})
    total = 0
    for name in files:
        size = (folder / name).stat().st_size
        total += size
        if name in sizes and sizes[name] != size:
            raise IndexCorrupt(f"index file {folder / name} is {size:,} bytes, not the "
                               f"{sizes[name]:,} the manifest records")
    try:
        import sqlite3

        db = sqlite3.connect(f"file:{folder / PASSAGES}?mode=ro", uri=True)
        try:
            n = db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        finally:
            db.close()
    except Exception as e:  # sqlite3.DatabaseError on a truncated or garbled file
        raise IndexCorrupt(f"{folder / PASSAGES} is unreadable ({e})") from None
    want = man.get("counts", {}).get("passages")
    if want is not None and n != want:
        raise IndexCorrupt(f"{folder / PASSAGES} holds {n} passages, the manifest {want}")
    if total <= hash_limit:
        for name, digest in files.items():
            if sha256_file(folder / name) != digest:
                raise IndexCorrupt(f"index file {folder / name} does not match its checksum")
    return man


def backend_of(manifest: dict[str, Any]) -> str:
    """The retrieval backend a build was written by (builds before backends: local)."""
    return manifest.get("backend", "local")


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    sums = checksums(folder)
    manifest = dict(manifest, format_version=FORMAT_VERSION, files=sums,
                    sizes={name: (folder / name).stat().st_size for name in sums})
    write_atomic(folder / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))


def builds_dir(home: Path) -> Path:
    return home / "index.d"


def new_build_dir(home: Path) -> Path:
    # unique even for two builds in one second; the pid stays last (cleanup reads it)
    d = builds_dir(home) / f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}-{os.getpid()}.tmp"
    d.mkdir(parents=True)
    return d


def publish(home: Path, tmp_build: Path, grace: float = 0.0) -> Path:
    """Rename a finished build into place and point ``home/index`` at it, atomically.
    Older builds are deleted once unpinned and ``grace`` seconds after the swap."""
    for f in tmp_build.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    final = tmp_build.with_suffix("")
    os.rename(tmp_build, final)
    link = home / "index"
    tmp_link = home / f".index.{os.getpid()}.lnk"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(os.path.relpath(final, home), tmp_link)
    if link.exists() and not link.is_symlink():
        raise IndexCorrupt(f"{link} is a real folder, not a symlink to a build: move it away")
    os.replace(tmp_link, link)
    fsync_dir(home)
    cleanup(home, keep=final, grace=grace)
    return final


def live_build(home: Path) -> Path | None:
    link = home / "index"
    return link.resolve() if link.is_symlink() and link.resolve().exists() else None


def cleanup(home: Path, keep: Path | None = None, grace: float = 0.0) -> None:
    """Delete leftover ``*.tmp`` builds of dead processes and superseded builds that no
    reader pins, once ``grace`` seconds have passed since the last swap."""
    bd = builds_dir(home)
    if not bd.exists():
        return
    live = live_build(home)
    link = home / "index"
    swapped_ago = time.time() - link.lstat().st_mtime if link.is_symlink() else float("inf")
    for d in bd.iterdir():
        if d in (keep, live):
            continue
        if d.suffix == ".tmp":
            pid = d.stem.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
                continue  # another indexer is still writing it
            shutil.rmtree(d, ignore_errors=True)
        elif swapped_ago >= grace:
            _delete_unless_pinned(d)


class BuildPin:
    """A reader's shared lock on one build: while held, :func:`cleanup` keeps the build."""

    def __init__(self, build: Path):
        self.build = build
        self._fh = None
        try:
            self._fh = open(build / PIN, "a+b")
        except PermissionError:
            return  # a read-only home: nobody can delete the build either
        except OSError as e:
            raise IndexMissing(f"index build {build} went away while loading ({e})") from None
        fcntl.flock(self._fh, fcntl.LOCK_SH)
        if not (build / MANIFEST).exists():  # deleted while we waited for the lock
            self._fh.close()
            raise IndexMissing(f"index build {build} was deleted while loading")

    def release(self) -> None:
        if self._fh is not None and not self._fh.closed:
            self._fh.close()  # closing the file drops the lock

    def __del__(self) -> None:
        self.release()


def pin(build: Path) -> BuildPin:
    return BuildPin(build)


def _delete_unless_pinned(build: Path) -> bool:
    """Delete ``build`` unless a reader pins it. The exclusive lock is held during the
    delete, so a reader pinning at that moment waits and then finds the build gone."""
    try:
        fh = open(build / PIN, "a+b")
    except OSError:
        shutil.rmtree(build, ignore_errors=True)
        return True
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return False
    try:
        shutil.rmtree(build, ignore_errors=True)
    finally:
        fh.close()
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
