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


def test_the_layers_contracts_hold() -> None:
    """pyproject.toml's [tool.importlinter] contracts: the house's "never" rules
    (the core knows no shell, readers no ledger, a till never loads the hub, the hub
    is no till, the pure modules import no I/O library), checked on every import."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    command = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(command), "--config", str(root / "pyproject.toml")], cwd=root, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout
