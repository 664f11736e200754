"""Docs that cannot drift: README commands, CI script, config keys, command help."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from terminal_agent.cli import cli
from terminal_agent.config import AgentConfig
from tests.api.conftest import agent_url, runtime  # noqa: F401  (a served API for the README's example)

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "README must open with a ```sh block of the two commands"
    return [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    run_cmd, test_cmd = commands
    assert "loyalty-agent" in run_cmd and "pytest" in test_cmd
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci_lines, ".ci/run must run exactly the README's test command"


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys |= _keys(ann, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_every_config_key_is_in_the_example_file() -> None:
    example = (ROOT / "config.example.toml").read_text()
    data = tomllib.loads(example)
    for key in _keys(AgentConfig):
        if key in ("readers", "cards.ranges"):
            continue  # lists of tables: documented as examples, checked by the drivers' tests
        section, _, name = key.rpartition(".")
        assert section in data and name in data[section], f"{key} is not in config.example.toml"


def test_example_config_is_valid() -> None:
    from terminal_agent.config import load_config

    load_config(ROOT / "config.example.toml")


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((f"{prefix}{name}", cmd))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, f"{prefix}{name} ")
    return out


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name, cmd in _commands(cli):
        assert cmd.help, f"`loyalty-agent {name}` has no help text"
        if not isinstance(cmd, click.Group):
            assert f"loyalty-agent {name}" in readme, f"`loyalty-agent {name}` is not in README.md"


def test_the_readme_curl_sale_is_accepted_as_written(agent_url: str, runtime: Any) -> None:
    """The README's curl sale, taken from the README and run with curl (or, without
    curl, the same request with exactly its headers) against the served API: 200."""
    import shlex
    import shutil
    import subprocess

    import httpx

    text = (ROOT / "README.md").read_text()
    found = re.search(r"^curl [^\n]*-X POST [^\n]*/v1/sales -d '\{.*?\}'$", text, re.S | re.M)
    assert found, "README.md has no curl sale example"
    member = runtime.ledger.enrol_member(name="Readme", mobile="09120000123", actor="test")
    args = shlex.split(found.group(0).replace("$TOKEN", runtime.token))
    card = json.loads(args[args.index("-d") + 1])["card_number"]
    runtime.ledger.issue_card(member_id=member.id, number=card, technology="magstripe", actor="test")
    port = agent_url.rsplit(":", 1)[1]
    args = [a.replace("localhost:8765", f"127.0.0.1:{port}") for a in args]
    if shutil.which("curl"):
        out = subprocess.run([*args, "-o", "/dev/null", "-w", "%{http_code}"], capture_output=True, text=True,
                             timeout=30)
        status = int(out.stdout)
    else:  # curl's request: its headers (-H), plus the form type it adds only when none is given
        pairs = [args[i + 1].split(":", 1) for i, a in enumerate(args) if a == "-H"]
        headers = {k.strip(): v.strip() for k, v in pairs}
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/x-www-form-urlencoded"  # what curl -d sends then
        url = next(a for a in args if "/v1/sales" in a)
        status = httpx.post(f"http://{url}", content=args[args.index("-d") + 1].encode(),
                            headers=headers).status_code
    assert status == 200
