"""LibreOffice headless, to prove a workbook opens in a real spreadsheet program.
Without it the test skips, except under CI (CI set), where it fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CONVERT_TIMEOUT_S = 180


def first_sheet_as_csv(book: Path, folder: Path) -> str:
    """The workbook's first sheet as LibreOffice reads it (UTF-8 CSV)."""
    soffice = shutil.which("soffice")
    if soffice is None:
        if os.environ.get("CI"):
            pytest.fail("LibreOffice (soffice) is not installed; under CI this test must run")
        pytest.skip("LibreOffice is not installed (apt-get install libreoffice-calc-nogui)")
    folder.mkdir(parents=True, exist_ok=True)
    profile = folder / "lo-profile"  # its own profile: parallel runs do not share a lock
    done = subprocess.run([soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
                           "csv:Text - txt - csv (StarCalc):44,34,76", "--outdir", str(folder), str(book)],  # 76: UTF-8
                          capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S)
    csv = folder / f"{book.stem}.csv"
    assert done.returncode == 0 and csv.exists(), done.stderr
    return csv.read_text(encoding="utf-8")
