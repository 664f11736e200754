"""Where a client on this machine finds the running agent's API: its address, the
POS token and the TLS check, from the same config the daemon reads."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from sync.client import tls_verify
from terminal_agent.config import AgentConfig
from terminal_agent.runtime import TOKEN_FILE


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    token: str
    verify: ssl.SSLContext | bool


def agent_endpoint(cfg: AgentConfig) -> Endpoint:
    token_path = cfg.data_dir / TOKEN_FILE
    token = cfg.api.token or (token_path.read_text().strip() if token_path.exists() else "")
    scheme = "https" if cfg.api.tls_cert else "http"
    host = f"[{cfg.api.host}]" if ":" in cfg.api.host else cfg.api.host
    return Endpoint(f"{scheme}://{host}:{cfg.api.port}", token,
                    tls_verify(cfg.resolve(cfg.api.tls_cert) if cfg.api.tls_cert else None))
