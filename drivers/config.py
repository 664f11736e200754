"""Config models for card ranges and readers (part of the agent's config file)."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CardRange(_Section):
    prefix: str = Field(pattern=r"^[0-9]{1,12}$")
    """Leading digits of this programme's card numbers."""
    lengths: list[int] = Field(default=[16], min_length=1)
    """Allowed total lengths of a card number in this range."""
    luhn: bool = False
    """Require a valid Luhn check digit."""


class CardsConfig(_Section):
    ranges: list[CardRange] = [CardRange(prefix="6395", lengths=[16], luhn=False)]
    """Loyalty card number ranges; a number outside them is refused."""
    dedupe_window_ms: int = Field(default=1500, ge=0, le=60_000)
    """Reads of the same card within this window count once."""


class SimulatedReaderConfig(_Section):
    kind: Literal["simulated"]
    id: str = Field(min_length=1)
    """Reader id shown in events and status."""
    source: str = ""
    """File, FIFO or Unix socket path the simulated card reads come from."""


class SerialReaderConfig(_Section):
    kind: Literal["serial"]
    id: str = Field(min_length=1)
    """Reader id shown in events and status."""
    port: str = Field(min_length=1)
    """Serial device, e.g. /dev/ttyUSB0."""
    baudrate: int = Field(default=9600, gt=0, le=4_000_000)
    """Line speed in baud."""
    bytesize: Literal[7, 8] = 8
    """Data bits."""
    parity: Literal["N", "E", "O"] = "N"
    """Parity: N(one), E(ven) or O(dd)."""
    stopbits: Literal[1, 2] = 1
    """Stop bits."""
    framing: Literal["ascii", "msr605"] = "ascii"
    """ascii: the reader sends tracks as text; msr605: the MSR206/605/606 ESC command protocol."""
    member_track: Literal[1, 2, 3] = 2
    """The track that carries the member number (others are the fallback)."""
    lrc: bool = False
    """The reader sends each track's LRC character after its end sentinel (ascii framing)."""
    idle_flush_ms: int = Field(default=30, ge=5, le=2_000)
    """Quiet time after which the bytes received so far are taken as the whole swipe."""


class PcscReaderConfig(_Section):
    kind: Literal["pcsc"]
    id: str = Field(min_length=1)
    """Reader id shown in events and status."""
    reader_name: str = ""
    """Substring of the PC/SC reader name to use; empty means every reader."""
    identity: Literal["uid", "mifare_block", "aid"] = "uid"
    """Where the member number comes from: the contactless UID, a MIFARE Classic block, or an ISO 7816 application."""
    uid_prefix: str = Field(default="", pattern=r"^[0-9]{0,12}$")
    """identity uid: digits put before the UID's zero-padded decimal form."""
    mifare_key: str = Field(default="FFFFFFFFFFFF", pattern=r"^[0-9A-Fa-f]{12}$", repr=False)
    """identity mifare_block: the 6-byte key in hex (never logged)."""
    mifare_key_type: Literal["A", "B"] = "A"
    """identity mifare_block: which key of the sector."""
    mifare_block: int = Field(default=4, ge=0, le=255)
    """identity mifare_block: the block holding the member number in ASCII digits."""
    aid: str = Field(default="", pattern=r"^([0-9A-Fa-f]{10,32})?$")
    """identity aid: the loyalty application's AID in hex (5 to 16 bytes)."""
    aid_read: Literal["get_data", "select_data", "select_tlv", "read_binary"] = "get_data"
    """identity aid: where the member number is after SELECT: get_data (GET DATA for aid_tag), select_data
    (the SELECT answer's data), select_tlv (aid_tag inside the SELECT answer's TLV), read_binary (a file)."""
    aid_tag: str = Field(default="5A", pattern=r"^([0-9A-Fa-f]{2}){1,2}$")
    """identity aid: the member number's BER-TLV tag in hex (1 or 2 bytes) for get_data and select_tlv."""
    aid_encoding: Literal["bcd", "ascii"] = "bcd"
    """identity aid: how the card writes the digits: bcd (padded with F) or ascii (padded with NUL, space, FF)."""
    read_binary_file: str = Field(default="", pattern=r"^([0-9A-Fa-f]{4})?$")
    """aid_read read_binary: the elementary file's 2-byte id in hex, selected inside the application."""
    read_binary_offset: int = Field(default=0, ge=0, le=0x7FFF)
    """aid_read read_binary: where in the file the number starts, in bytes."""
    read_binary_length: int = Field(default=0, ge=0, le=256)
    """aid_read read_binary: how many bytes to read (1 to 256); 0 reads what the file holds."""
    poll_ms: int = Field(default=200, ge=20, le=5_000)
    """How long one wait for card or reader changes lasts; bounds close() and reader discovery."""

    @model_validator(mode="after")
    def _aid_needed(self) -> "PcscReaderConfig":
        if self.identity == "aid" and not self.aid:
            raise PydanticCustomError("aid_missing", "identity 'aid' needs the application's aid (hex)",
                                      {"key": "aid"})
        if self.identity == "aid" and self.aid_read == "read_binary" and not self.read_binary_file:
            raise PydanticCustomError(
                "file_missing", "aid_read 'read_binary' needs the file's 2-byte id in hex, e.g. \"0101\"",
                {"key": "read_binary_file"})
        return self


class WedgeReaderConfig(_Section):
    kind: Literal["wedge"]
    id: str = Field(min_length=1)
    """Reader id shown in events and status."""
    device: str = Field(min_length=1)
    """The reader's input device, e.g. /dev/input/by-id/usb-...-event-kbd."""
    grab: bool = True
    """Take the device for the agent alone, so the typed track never reaches the focused window."""
    member_track: Literal[1, 2, 3] = 2
    """The track that carries the member number (others are the fallback)."""


ReaderConfig = Annotated[
    Union[SimulatedReaderConfig, SerialReaderConfig, PcscReaderConfig, WedgeReaderConfig],
    Field(discriminator="kind"),
]
