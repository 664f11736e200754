"""Online backups with SQLite's backup API, into a rotating folder, and restore.

A backup is written to a temporary name, checked (`PRAGMA integrity_check` and
`ledger verify`), then renamed into place, so the folder never holds a half file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ledger.db import create_ledger_engine, has_schema
from ledger.errors import BackupError
from ledger.progress import NO_PROGRESS, Progress
from ledger.verify import verify

BACKUP_PREFIX = "ledger-"
BACKUP_SUFFIX = ".sqlite3"
BACKUP_PAGES_PER_STEP = 1024  # copy in steps so the daemon's writers are not starved
BACKUP_FILE_MODE = 0o600  # names, mobiles and PIN hashes: the agent's user's alone
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
BACKUP_PARTIAL_STALE_S = 3600  # a .partial this old is left by a backup that died


def _remove_with_sidecars(path: Path) -> None:
    path.unlink(missing_ok=True)
    for suffix in SQLITE_SIDECARS:
        Path(str(path) + suffix).unlink(missing_ok=True)


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    size_bytes: int
    entries: int


def _check_file(path: Path) -> int:
    """Integrity check and ledger verify of a database file; returns its entry count."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = con.execute("PRAGMA integrity_check").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from None
    if not result or result[0] != "ok":
        raise BackupError(f"{path} failed SQLite's integrity check: {result[0] if result else 'no answer'}")
    engine = create_ledger_engine(path, read_only=True)
    try:
        if not has_schema(engine):
            raise BackupError(f"{path} is a SQLite file but not a loyalty ledger")
        report = verify(engine)
    finally:
        engine.dispose()
    if not report.ok:
        raise BackupError(f"{path} fails ledger verify: {report.problems[0]}")
    return report.entries_checked


def _copy(src_path: Path, dst_path: Path, src_uri: bool = False, progress: Progress = NO_PROGRESS) -> None:
    """A consistent copy in one self-contained file: the copy is switched out of WAL
    mode, so checking it later leaves no -wal or -shm file beside it. progress: told
    the pages copied, step by step."""
    copied = 0

    def step(status: int, remaining: int, total: int) -> None:
        nonlocal copied
        progress.set_total(total)
        progress.advance(max(0, total - remaining - copied))
        copied = max(copied, total - remaining)

    src = sqlite3.connect(f"file:{src_path}?mode=ro" if src_uri else str(src_path), uri=src_uri)
    try:
        dst = sqlite3.connect(str(dst_path))
        try:
            os.chmod(dst_path, BACKUP_FILE_MODE)
            src.backup(dst, pages=BACKUP_PAGES_PER_STEP, progress=step)
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def backup_now(ledger_path: Path, backup_dir: Path, keep: int, *, at: datetime | None = None,
               progress: Progress = NO_PROGRESS) -> BackupInfo:
    """Copy the live ledger into backup_dir, check the copy, then drop the oldest beyond
    `keep`. progress: the copy's pages (a started Progress; the caller finishes it)."""
    if not ledger_path.exists():
        raise BackupError(f"ledger file {ledger_path} does not exist; nothing to back up")
    at = at or datetime.now(timezone.utc)
    try:
        backup_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create backup folder {backup_dir}: {exc.strerror}") from None
    # numbered, then timed: the order of backups is the order they were taken, whatever
    # the clock said (a clock stepped back once made rotation delete the newest)
    number = max((_number(p) for p in list_backups(backup_dir)), default=0) + 1
    final = backup_dir / f"{BACKUP_PREFIX}{number:06d}-{at:%Y%m%dT%H%M%S%fZ}{BACKUP_SUFFIX}"
    tmp = final.with_suffix(".partial")
    try:
        _copy(ledger_path, tmp, progress=progress)
        entries = _check_file(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {ledger_path} failed: {exc}") from None
    except OSError as exc:
        raise BackupError(f"backup into {backup_dir} failed: {exc.strerror}") from None
    finally:
        _remove_with_sidecars(tmp)
    rotate(backup_dir, keep)
    return BackupInfo(final, final.stat().st_size, entries)


def _number(path: Path) -> int:
    """The backup's number (0 for one named by time alone, by an older version)."""
    head = path.name[len(BACKUP_PREFIX):].split("-", 1)[0]
    return int(head) if len(head) == 6 and head.isdigit() else 0


def list_backups(backup_dir: Path) -> list[Path]:
    """The backups, oldest first: by number, and those of older versions by name (time)."""
    if not backup_dir.is_dir():
        return []
    return sorted((p for p in backup_dir.glob(f"{BACKUP_PREFIX}*{BACKUP_SUFFIX}") if p.is_file()),
                  key=lambda p: (_number(p), p.name))


def rotate(backup_dir: Path, keep: int) -> list[Path]:
    """Drop the oldest backups beyond `keep`, and what an interrupted backup left
    (a .partial file and its sidecars: a crash between copy and rename)."""
    backups = list_backups(backup_dir)
    doomed = backups[: max(0, len(backups) - keep)]
    for path in doomed:
        _remove_with_sidecars(path)
    now = time.time()
    for stale in backup_dir.glob(f"{BACKUP_PREFIX}*.partial*"):
        with contextlib.suppress(OSError):  # another backup may be writing it right now: only old ones
            if now - stale.stat().st_mtime > BACKUP_PARTIAL_STALE_S:
                stale.unlink()
    return doomed


def restore(backup_file: Path, ledger_path: Path, *, at: datetime | None = None) -> Path | None:
    """Verify backup_file, keep the current ledger aside, and copy the backup into place.

    The caller must make sure no agent is running on this ledger (see the run lock).
    Returns where the previous ledger was kept, if there was one.
    """
    if not backup_file.is_file():
        raise BackupError(f"backup file {backup_file} does not exist")
    _check_file(backup_file)
    at = at or datetime.now(timezone.utc)
    kept: Path | None = None
    ledger_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = ledger_path.with_name(ledger_path.name + ".restoring")
    try:
        _copy(backup_file, tmp, src_uri=True)
        if ledger_path.exists():
            kept = ledger_path.with_name(f"{ledger_path.name}.before-restore-{at:%Y%m%dT%H%M%SZ}")
            _copy(ledger_path, kept)
        for suffix in ("-wal", "-shm"):
            Path(str(ledger_path) + suffix).unlink(missing_ok=True)
        os.replace(tmp, ledger_path)
    except (sqlite3.Error, OSError) as exc:
        raise BackupError(f"restore of {backup_file} failed: {exc}") from None
    finally:
        _remove_with_sidecars(tmp)
    return kept
