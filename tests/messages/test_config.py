"""The hub's config: every key documented in hub.example.toml, the example valid,
errors in one line naming the file and the key (exit 2), secrets never echoed."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from sync.hub.config import HubConfig, load_hub_config
from sync.hub.messages.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


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


def test_every_key_is_in_the_example_file_with_a_docstring() -> None:
    data = tomllib.loads((ROOT / "hub.example.toml").read_text())
    for key in _keys(HubConfig) - {"stores", "gateways"}:
        section, _, name = key.rpartition(".")
        table = data
        for part in section.split("."):
            table = table[part]
        assert name in table, f"{key} is not in hub.example.toml"
    from sync.hub import config as c

    for model in (c.MessagesSection, c.WorkerSection, c.TriggersSection, c.VerificationSection, c.StoreSection,
                  c.StoreTriggers, c.FileGateway, c.HttpGateway, c.KavenegarGateway, c.SmsIrGateway, c.MaxAges):
        example = data["stores"]["tehran-1"] if model is c.StoreSection else \
            data["stores"]["tehran-1"]["triggers"] if model is c.StoreTriggers else None
        if model in (c.FileGateway, c.HttpGateway, c.KavenegarGateway, c.SmsIrGateway):
            example = next(g for g in data["gateways"].values() if g["kind"] == model.model_fields["kind"].annotation
                           .__args__[0])
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"
            if example is not None:
                assert name in example, f"{model.__name__}.{name} is not in hub.example.toml"


def test_the_example_files_are_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = load_hub_config(ROOT / "hub.example.toml")
    assert cfg.messages.gateway == "console" and cfg.trigger("tehran-1", "receipt") == "on"
    assert cfg.trigger("elsewhere", "receipt") == "opt-in" and cfg.quiet("tehran-1")[1].hour == 9
    (tmp_path / "hub.toml").write_text('[messages]\ntemplates = "templates.toml"\n')
    (tmp_path / "templates.toml").write_text((ROOT / "templates.example.toml").read_text())
    loaded = load_hub_config(tmp_path / "hub.toml")
    assert loaded.templates.get("nowruz-1405").kind == "campaign"
    assert loaded.templates.get("offer-weekend-double").kind == "offer"


@pytest.mark.parametrize("text, key", [
    ("[messages]\ndaily_limit = -1\n", "messages.daily_limit"),
    ("[messages]\nquiet_start = \"25:00\"\n", "messages.quiet_start"),
    ("[messages]\ngateway = \"nope\"\n", "messages.gateway"),
    ("[messagez]\n", "messagez"),
    ("[stores.s1]\nutc_offset = \"3.5\"\n", "stores.s1.utc_offset"),
    ("[gateways.k]\nkind = \"kavenegar\"\napi_key_env = \"LOYALTY_TEST_NO_SUCH_VAR\"\n", "gateways.k.api_key_env"),
    ("[gateways.h]\nkind = \"http\"\nurl = \"https://x.example/s\"\nbody = \"{mobile\"\n", "gateways.h.body"),
    ("[messages]\ntemplates = \"missing.toml\"\n", "messages.templates"),
])
def test_an_error_names_the_file_and_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_hub_config(path)
    assert str(err.value).startswith(f"{path}: {key}: ")


def test_the_cli_says_it_in_one_line_with_exit_2_and_never_echoes_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('[gateways.k]\nkind = "kavenegar"\napi_key = 123456789\n[templates]\n')
    out = subprocess.run([sys.executable, "-m", "sync.hub", "--config", str(path), "--db",
                          f"sqlite:///{tmp_path / 'h.sqlite3'}", "messages", "list"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert str(path) in out.stderr and "123456789" not in out.stderr
    bad_template = tmp_path / "t.toml"
    bad_template.write_text('[receipt]\nfa = "{name} {balanse}"\n')
    path.write_text(f'[messages]\ntemplates = "{bad_template.name}"\n')
    out = subprocess.run([sys.executable, "-m", "sync.hub", "--config", str(path), "--db",
                          f"sqlite:///{tmp_path / 'h.sqlite3'}", "messages", "list"],
                         capture_output=True, text=True, timeout=60, env={"LOYALTY_HUB_CONFIG": "", "PATH": ""})
    assert out.returncode == 2 and "'receipt'" in out.stderr and "{balanse}" in out.stderr


def test_gateway_secrets_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOYALTY_TEST_KAVE_KEY", "from-the-environment")
    path = tmp_path / "hub.toml"
    path.write_text('[messages]\ngateway = "k"\n[gateways.k]\nkind = "kavenegar"\n'
                    'api_key_env = "LOYALTY_TEST_KAVE_KEY"\n')
    cfg = load_hub_config(path)
    assert cfg.gateways["k"].secret("api_key") == "from-the-environment"
    assert "from-the-environment" not in repr(cfg)
    monkeypatch.setenv("LOYALTY_HUB_CONFIG", str(path))
    assert load_hub_config().messages.gateway == "k"
