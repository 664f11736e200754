"""End to end: the real console (`loyalty-agent tui`) in tmux at 80x24, a terminal
without bidi, against a real daemon process; the screen read back with
`tmux capture-pane`. Persian must be on the screen joined and right to left (the
console's display order), with Persian digits."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.service import Ledger
from ledger.users import add_user
from terminal_agent.config import load_config
from terminal_agent.i18n import visual
from terminal_agent.runtime import pin_key
from tests.e2e.agent_proc import TOKEN, Agent, free_port

SCREEN_WAIT_S = 20.0
pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


class Tmux:
    """One tmux server of our own (its own socket), one 80x24 window."""

    def __init__(self, name: str) -> None:
        self.socket = name

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout

    def start(self, command: list[str], cwd: Path) -> None:
        self.run("new-session", "-d", "-s", "console", "-x", "80", "-y", "24", "-c", str(cwd),
                 " ".join(command))

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "console")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "console", *keys)

    def wait_for(self, *texts: str) -> str:
        deadline = time.monotonic() + SCREEN_WAIT_S
        shown = ""
        while time.monotonic() < deadline:
            try:
                shown = self.screen()
            except subprocess.CalledProcessError:  # the window closed
                shown = ""
            if all(t in shown for t in texts):
                return shown
            time.sleep(0.2)
        raise AssertionError(f"not on the screen: {texts!r}\n{shown}")

    def alive(self) -> bool:
        return subprocess.run(["tmux", "-L", self.socket, "has-session", "-t", "console"],
                              capture_output=True, timeout=10).returncode == 0

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


def test_the_console_in_tmux_shows_persian_joined_and_right_to_left(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[agent]\ndata_dir = "data"\nstore = "S1"\nterminal = "T1"\nlocale = "fa"\n'
                   f'persian_digits = true\n[api]\nport = {port}\ntoken = "{TOKEN}"\n[backup]\n'
                   f'interval_minutes = 0\n[console]\nbidi = "reorder"\n')
    led = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="S1", terminal="T1")
    add_user(led, username="mina", role="manager", pin="654321", actor="test", pin_key=pin_key(load_config(cfg)))
    member = led.enrol_member(name="لیلا کریمی", mobile="09121112233", actor="test")
    led.issue_card(member_id=member.id, number="6395000000000101", technology="magstripe", actor="test")
    led.close()
    agent = Agent(cfg, port).start()
    tmux = Tmux(f"loyalty-e2e-{port}")
    try:
        tmux.start([sys.executable, "-m", "terminal_agent", "--config", str(cfg), "tui", "--user", "mina"],
                   tmp_path)
        shown = tmux.wait_for(visual("باشگاه مشتریان: میز مدیر"), visual("رمز"))
        assert "مشتریان" not in shown  # never the letters unjoined in typing order
        tmux.keys("654321", "Enter")
        tmux.wait_for(visual("عضویت"), visual("خروج از حساب"))  # the menu, every task within 80 columns
        tmux.keys("6395000000000101", "Enter")
        shown = tmux.wait_for(visual("لیلا کریمی"), visual("مانده امتیاز: ۱۰۰ امتیاز"))
        assert "۶۳۹۵۰۰۰۰۰۰۰۰۰۱۰۱" in shown  # the card in the table, in Persian digits
        tmux.keys("C-c")
        tmux.wait_for(visual("از برنامه خارج می‌شوید؟"))
        tmux.keys("Enter")
        deadline = time.monotonic() + SCREEN_WAIT_S
        while tmux.alive():
            assert time.monotonic() < deadline, "the console did not quit"
            time.sleep(0.2)
    finally:
        tmux.kill()
        agent.kill()
