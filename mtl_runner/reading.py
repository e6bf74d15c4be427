"""Reading files a user names, safely: regular files only, their size checked first.

A recipe or data path may name anything: `/dev/zero` (endless), a FIFO with no writer (a read
that never returns), a folder, a multi-gigabyte file. `check_regular_file` refuses all of
these before a byte is read; `read_bytes_limited` reads a regular file without ever reading
more than its limit, and without blocking even if the path is swapped for a FIFO.

Example:
    >>> size = check_regular_file("table.csv", data_file_limit(), "data file")
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DATA_LIMIT_VARIABLE = "MTL_MAX_DATA_BYTES"


class FileRefused(Exception):
    """A path that is not read: missing, not a regular file, or too large.

    `str(error)` is `PATH: message`; a caller that names the path itself (a recipe problem
    located at FILE:) shows `message` alone. Neither ever holds the file's content.

    Attributes:
        path: the path refused.
        message: what is wrong, without the path.
        hint: what to do about it.
        missing: True when the path does not exist (callers word that case their own way).
    """

    def __init__(self, path: str | Path, message: str, hint: str = "", missing: bool = False):
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.message = message
        self.hint = hint
        self.missing = missing


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _refuse_status(path: Path, status: os.stat_result, limit: int, what: str) -> int:
    if not stat.S_ISREG(status.st_mode):
        raise FileRefused(path, f"the {what} is {_kind(status.st_mode)}; only regular files "
                          "are read", hint="Name a regular file.")
    if status.st_size > limit:
        raise FileRefused(path, f"the {what} is {status.st_size:,} bytes; "
                          f"{_plural(what)} are limited to {limit:,}", hint=_limit_hint(what))
    return status.st_size


def _plural(what: str) -> str:
    return what if what.endswith("s") else what + "s"


def _limit_hint(what: str) -> str:
    if "recipe" in what:
        return "Put data in a data file and point data.path at it."
    return (f"Raise the limit with the environment variable {DATA_LIMIT_VARIABLE}, or use a "
            "smaller file.")


def check_regular_file(path: str | Path, limit: int, what: str = "file") -> int:
    """Refuses, before reading anything, a path that is not a regular file of at most `limit` bytes.

    Symbolic links are followed (a link to a regular file is fine). Nothing is opened, so a
    FIFO never blocks.

    Args:
        path: the file.
        limit: the largest size accepted, in bytes.
        what: what the file is, for the message ("recipe", "data file", ...).

    Returns:
        The file's size in bytes.

    Raises:
        FileRefused: the path is missing, not a regular file (a directory, FIFO, device,
            socket) or larger than `limit`.
    """
    path = Path(path)
    try:
        status = path.stat()
    except FileNotFoundError:
        raise FileRefused(path, f"{what} not found", missing=True) from None
    except OSError as error:
        raise FileRefused(path, f"cannot read the {what}: {error.strerror}") from None
    return _refuse_status(path, status, limit, what)


def read_bytes_limited(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes, never reading more than that.

    The file is opened without blocking and checked again once open (a path swapped for a
    FIFO after the check does not hang), and at most `limit + 1` bytes are read (files such
    as those under /proc report a size of 0).

    Raises:
        FileRefused: as `check_regular_file`, or the file grew past `limit` while read.
    """
    path = Path(path)
    check_regular_file(path, limit, what)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileRefused(path, f"{what} not found", missing=True) from None
    except OSError as error:
        raise FileRefused(path, f"cannot read the {what}: {error.strerror}") from None
    try:
        _refuse_status(path, os.fstat(descriptor), limit, what)
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(descriptor, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as error:
        raise FileRefused(path, f"cannot read the {what}: {error.strerror}") from None
    finally:
        os.close(descriptor)
    if total > limit:
        raise FileRefused(path, f"the {what} is more than {limit:,} bytes; "
                          f"{_plural(what)} are limited to {limit:,}", hint=_limit_hint(what))
    return b"".join(chunks)


def data_file_limit() -> int:
    """The largest data file read: `MTL_MAX_DATA_BYTES` if set, else half the machine's memory
    (a table in memory takes at least its file's size), at least 64 MiB."""
    value = os.environ.get(DATA_LIMIT_VARIABLE, "").strip()
    if value:
        try:
            return max(int(float(value)), 0)
        except ValueError:
            pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 16 << 30
    return max(memory // 2, 64 << 20)
