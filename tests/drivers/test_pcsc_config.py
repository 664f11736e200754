"""The PC/SC reader's config: the AID read recipes' keys, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.config import PcscReaderConfig
from terminal_agent.config import load_config
from terminal_agent.errors import ConfigError

READER = '[[readers]]\nkind = "pcsc"\nid = "chip1"\nidentity = "aid"\naid = "F0010203040506"\n'


def test_get_data_of_tag_5a_in_bcd_stays_the_default() -> None:
    cfg = PcscReaderConfig(kind="pcsc", id="chip1", identity="aid", aid="F0010203040506")
    assert (cfg.aid_read, cfg.aid_tag, cfg.aid_encoding) == ("get_data", "5A", "bcd")
    assert (cfg.read_binary_file, cfg.read_binary_offset, cfg.read_binary_length) == ("", 0, 0)


@pytest.mark.parametrize(("extra", "key", "hint"), [
    ('aid_read = "get_response"\n', "readers[0].aid_read", "get_data"),
    ('aid_tag = "5"\n', "readers[0].aid_tag", "pattern"),
    ('aid_tag = "9F7F01"\n', "readers[0].aid_tag", "pattern"),
    ('aid_encoding = "ebcdic"\n', "readers[0].aid_encoding", "bcd"),
    ('aid_read = "read_binary"\n', "readers[0].read_binary_file", "needs the file's 2-byte id"),
    ('aid_read = "read_binary"\nread_binary_file = "01"\n', "readers[0].read_binary_file", "pattern"),
    ('aid_read = "read_binary"\nread_binary_file = "0101"\nread_binary_offset = 32768\n',
     "readers[0].read_binary_offset", "less than or equal to 32767"),
    ('aid_read = "read_binary"\nread_binary_file = "0101"\nread_binary_length = 257\n',
     "readers[0].read_binary_length", "less than or equal to 256"),
])
def test_a_bad_recipe_key_is_named(tmp_path: Path, extra: str, key: str, hint: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(READER + extra)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == key and hint in err.value.message


def test_a_missing_aid_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[[readers]]\nkind = "pcsc"\nid = "chip1"\nidentity = "aid"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == "readers[0].aid" and "needs the application's aid" in err.value.message
