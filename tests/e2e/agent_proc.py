"""Start a real `loyalty-agent run` process for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

READY_TIMEOUT_S = 20.0
TOKEN = "e2e-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, port: int, extra: str = "") -> Path:
    cfg = folder / "config.toml"
    cfg.write_text(
        f'[agent]\ndata_dir = "data"\nstore = "S1"\nterminal = "T1"\nlocale = "en"\n'
        f'[api]\nport = {port}\ntoken = "{TOKEN}"\n[backup]\ninterval_minutes = 0\n{extra}'
    )
    return cfg


class Agent:
    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = config.parent / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, fd_limit: int | None = None) -> "Agent":
        """fd_limit: the agent's RLIMIT_NOFILE, e.g. 1024 as on many tills."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}

        def limit_fds() -> None:
            if fd_limit is not None:
                import resource

                resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "terminal_agent", "--config", str(self.config), "run"],
                stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=limit_fds,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.base}/v1/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"agent not ready in {READY_TIMEOUT_S}s: {self.log.read_text()}")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10.0)

    def stop(self, timeout_s: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
