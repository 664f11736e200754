"""The pure core stays pure: checked in a fresh interpreter, not hoped."""

from __future__ import annotations

import subprocess
import sys

import pytest

SHELL_MODULES = ("sqlalchemy", "click", "textual", "serial", "smartcard", "httpx", "fastapi")


@pytest.mark.parametrize("module", ["ledger.chain", "ledger.mobile", "ledger.errors", "ledger.timefmt", "ledger.cardpolicy"])
def test_pure_modules_import_no_shell(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = [m for m in {SHELL_MODULES!r} if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
