"""Atomic writes (nothing half-written ever lands at an output path) and checked text reads."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from hashee.core.errors import HasheeError


def current_umask() -> int:
    """The process umask (read by setting it and putting it back: os has no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_file_beside(path: Path) -> Path:
    """An empty temporary file in `path`'s folder, with the mode a plain `open(path, "w")` would give it:
    mkstemp makes it 0600, which the rename would carry to `path`, hiding results from a user's group."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    return Path(tmp)


def temp_dir_beside(path: Path) -> Path:
    """A temporary folder in `path`'s folder, with `os.mkdir`'s mode under the umask (mkdtemp: 0700)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~current_umask())
    return tmp


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_file_beside(path)
    try:
        with full_disk_explained(path):
            yield Path(tmp)
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# Below this a failed write is put down to a full disk: writers then fail with messages that do not say so
# (torch.save: "[enforce fail at inline_container.cc] unexpected pos ...").
DISK_FULL_BYTES = 16 * 2**20


@contextlib.contextmanager
def full_disk_explained(path: Path):
    """Inside the atomic writers, before their `finally` removes the partial output (so the disk is still as
    full as the write left it): an error raised while the disk is (nearly) full becomes `disk_full_error`'s."""
    try:
        yield
    except Exception as error:
        full = disk_full_error(path, error)
        if full is None:
            raise
        raise full from error


def disk_full_error(path: Path, error: Exception) -> HasheeError | None:
    """A one-line error for a write to `path` that failed while its disk was (nearly) full, else None."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return None
    if free >= DISK_FULL_BYTES:
        return None
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return HasheeError(f"{path}: not written, its disk is full ({free / 2**20:.1f} MiB free); free space "
                       f"and rerun ({type(error).__name__}: {first_line[:120]})")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary directory beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_beside(path)
    try:
        with full_disk_explained(path):
            yield tmp
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text_atomic(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_csv_atomic(path, frame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def read_text_checked(path, encoding: str = "utf-8-sig") -> str:
    """A text file's contents (utf-8-sig: a BOM, as some ELUE headers carry, is dropped); a file that is not
    UTF-8 is one line naming it and the byte."""
    try:
        return Path(path).read_text(encoding=encoding)
    except UnicodeDecodeError as err:
        raise HasheeError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start})") from None


def split_text_lines(text: str) -> list[str]:
    """Lines split on \n only (str.splitlines would also break on \x1c, \u2028, ... inside review text),
    a trailing \r dropped from each."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
