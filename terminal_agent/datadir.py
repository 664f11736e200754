"""Data at rest: the data folder and everything in it are the agent's user's alone.

The ledger holds names, mobiles and PIN hashes; backups hold the same. Files are
created private (the process umask is 0077, set at start) and anything older found
readable by others is fixed at start, so a ledger made by an earlier version or
copied in by hand does not stay open to every local user.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("terminal_agent.datadir")

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
WALK_FILES_MAX = 10_000  # a data folder holds a ledger, keys and backups, not this many files


def private_umask() -> None:
    """Every file and folder this process creates from now on is private."""
    os.umask(PRIVATE_UMASK)


def _tighten(path: Path, mode: int) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        return  # never follow a link out of the folder
    if stat.S_IMODE(st.st_mode) & ~mode:
        try:
            os.chmod(path, stat.S_IMODE(st.st_mode) & mode)
        except PermissionError:
            log.warning("%s is readable by other users and cannot be changed (owner %d)", path, st.st_uid)
            return
        log.info("made %s private (was %o)", path, stat.S_IMODE(st.st_mode))


def ensure_private_dir(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _tighten(folder, DIR_MODE)


def secure(data_dir: Path, ledger_path: Path, backup_dir: Path) -> None:
    """Create or tighten the data folder, the ledger and its sidecars, and the backups."""
    ensure_private_dir(data_dir)
    for folder in {ledger_path.parent, backup_dir}:
        if folder.exists() or folder == ledger_path.parent:
            ensure_private_dir(folder)
    files: list[Path] = [ledger_path, *(Path(str(ledger_path) + s) for s in SQLITE_SIDECARS)]
    for folder in (data_dir, backup_dir):
        files.extend(_files(folder))
    for path in files:
        _tighten(path, FILE_MODE)


def _files(folder: Path) -> Iterable[Path]:
    if not folder.is_dir():
        return []
    found = []
    for i, path in enumerate(folder.iterdir()):
        if i >= WALK_FILES_MAX:
            break
        if path.is_file() and not path.is_symlink():
            found.append(path)
    return found
