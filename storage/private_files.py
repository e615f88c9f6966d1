"""Files holding police traffic are readable by Daraja's own user only.

The database, its `-wal` and `-shm` files, audit exports and anything else Daraja writes with
content are created 0600 and the directory Daraja creates for them 0700. SQLite gives a
database's `-wal` and `-shm` files the database file's own permissions, so the database file
is created 0600 before SQLite first opens it, and an existing one (from an older version) is
tightened at start. A directory Daraja did not create is left alone (it may be shared, such as
/tmp), but a warning says when others can read into it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """Create `path` (and missing parents) 0700; warn if an existing one is open to others."""
    if not path.exists():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        # mkdir's mode is filtered by the umask; say it exactly.
        os.chmod(path, DIR_MODE)
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 and not mode & stat.S_ISVTX:
        log.warning(
            "%s is open to other users (mode %o): chmod 700 it, Daraja's files are private",
            path,
            mode,
        )


def tighten(path: Path) -> None:
    """Make an existing file 0600 (if this user owns it); nothing if it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
        os.chmod(path, FILE_MODE)


def prepare_sqlite(path: Path) -> None:
    """A private home for a SQLite database: directory 0700, database and side files 0600.

    An existing directory is left to the caller's `private_dir` (one warning, not two)."""
    if not path.parent.exists():
        private_dir(path.parent)
    for suffix in SQLITE_SUFFIXES:
        tighten(path.with_name(path.name + suffix))
    if not path.exists():
        # An empty file is an empty database to SQLite; created here, it is 0600 whatever the
        # umask, and the -wal and -shm files SQLite creates next to it copy that.
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
        os.close(fd)


def open_private(path: Path, mode: str = "w", **kwargs: Any) -> IO[Any]:
    """`path.open(mode)` for a file with content: created 0600, an existing one tightened."""
    flags = os.O_WRONLY | os.O_CREAT
    flags |= os.O_APPEND if "a" in mode else os.O_TRUNC
    fd = os.open(path, flags, FILE_MODE)
    # Not ours (a shared file we may write to): its mode stays.
    with contextlib.suppress(PermissionError):
        os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, mode, **kwargs)
