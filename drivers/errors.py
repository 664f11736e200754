"""Errors of the card readers. Nothing here ever carries a full card number.

    DriverError
    ├── CardRejected           a read that is not one of our member cards
    │   ├── BankCardRefused    a payment card swiped or tapped by mistake
    │   └── OutOfRange         a number outside the configured loyalty ranges
    ├── FrameError             bytes from a reader that do not form a valid frame or track
    ├── ReaderUnavailable      the port or PC/SC reader is gone (unplugged, pcscd down)
    └── CardCommandFailed      a smart card answered a command with an error status word
"""

from __future__ import annotations


class DriverError(Exception):
    code = "driver_error"
    exit_code = 1


class CardRejected(DriverError):
    code = "card_rejected"


class BankCardRefused(CardRejected):
    code = "bank_card"


class OutOfRange(CardRejected):
    code = "card_out_of_range"


class FrameError(DriverError):
    code = "bad_frame"


class ReaderUnavailable(DriverError):
    code = "reader_unavailable"


class CardCommandFailed(DriverError):
    code = "card_command_failed"

    def __init__(self, message: str, sw1: int | None = None, sw2: int | None = None) -> None:
        super().__init__(message)
        self.sw1, self.sw2 = sw1, sw2
