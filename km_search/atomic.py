"""Locks, atomic writes and folder swaps: the one implementation every writer uses.

Why one module: the lock / temporary file / rename step was written four times (index
builds, the ONNX export, the model converter, the static model). Each copy had to get
the same details right: an advisory ``flock`` so a second process waits (or fails
clearly), writing beside the target and ``os.replace`` so readers see the old file or
the new one and never half of either, ``fsync`` of the data and of the directory so a
power cut cannot leave a renamed but empty file.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator


@contextlib.contextmanager
def exclusive_lock(path: Path, *, wait: bool = True, busy: str = "",
                   error: type[Exception] = RuntimeError) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing). With
    ``wait=False`` a held lock raises ``error(busy)`` at once instead of waiting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise error(busy or f"{path} is locked by another process") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. a platform without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str | bytes, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``data``: written to a temporary sibling, fsynced, renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data.encode(encoding) if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def build_once(out: Path, make: Callable[[Path], None]) -> Path:
    """``out``, made by ``make(tmp)`` unless already there: one process builds it (the
    others wait on the lock and then find it), into a temporary file renamed into place."""
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out.parent / f".{out.name}.lock"):
        if not out.exists():
            tmp = out.with_suffix(f".{os.getpid()}.tmp")
            try:
                make(tmp)
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
    return out


def replace_dir(tmp: Path, dest: Path) -> None:
    """Swap the finished folder ``tmp`` in as ``dest``. An existing ``dest`` is moved
    aside first, put back if the swap fails, and deleted only once the new one is in
    place, so readers always find a complete folder."""
    os.chmod(tmp, 0o755)
    old: Path | None = None
    try:
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            os.rmdir(old)
            os.rename(dest, old)
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        if old is not None and old.exists() and not dest.exists():
            os.rename(old, dest)  # put the previous folder back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
