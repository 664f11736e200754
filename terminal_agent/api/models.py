"""Request and answer bodies of the local API. Money and points are integers (strict)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ledger.types import LINES_PER_SALE_MAX, QUANTITY_MAX, UNIT_PRICE_MAX

Text64 = Field(min_length=1, max_length=64)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LineIn(Body):
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=QUANTITY_MAX)
    unit_price: int = Field(ge=0, le=UNIT_PRICE_MAX, description="Rial per unit")


class QuoteIn(Body):
    card_number: str = Field(min_length=4, max_length=32)
    lines: list[LineIn] = Field(min_length=1, max_length=LINES_PER_SALE_MAX)
    redeem_points: int = Field(default=0, ge=0, le=10**12)


class SaleIn(QuoteIn):
    receipt_ref: str = Field(min_length=1, max_length=64)
    idempotency_key: str = Field(min_length=1, max_length=128)
    locale: Literal["fa", "en"] | None = None


class SlipIn(Body):
    locale: Literal["fa", "en"] | None = None


class RefundLineIn(Body):
    line_no: int = Field(ge=1, le=LINES_PER_SALE_MAX)
    quantity: int = Field(ge=1, le=QUANTITY_MAX)


class RefundIn(Body):
    sale_id: str = Field(min_length=1, max_length=36)
    idempotency_key: str = Field(min_length=1, max_length=128)
    lines: list[RefundLineIn] | None = Field(default=None, max_length=LINES_PER_SALE_MAX)


class SessionIn(Body):
    username: str = Field(min_length=1, max_length=64)
    pin: str = Field(min_length=1, max_length=32)


class EnrolIn(Body):
    name: str = Field(min_length=1, max_length=200)
    mobile: str = Field(min_length=1, max_length=32)
    birth_date: date | None = Field(default=None, strict=False)
    referrer: str | None = Field(default=None, max_length=40)


class CardIn(Body):
    number: str = Field(min_length=4, max_length=32)
    technology: Literal["magstripe", "contactless", "smartcard", "manual"] = "magstripe"


class ReplaceIn(Body):
    new_number: str = Field(min_length=4, max_length=32)
    reason: str = Field(default="lost", min_length=1, max_length=200)


class BlockIn(Body):
    reason: str = Field(min_length=1, max_length=200)
    lost: bool = True


class AdjustIn(Body):
    points: int = Field(ge=-10_000_000, le=10_000_000)
    reason: str = Field(min_length=1, max_length=200)


class GiftIssueIn(Body):
    number: str = Field(min_length=4, max_length=32)
    amount: int = Field(ge=0, le=10**12)


class GiftAmountIn(Body):
    amount: int = Field(ge=1, le=10**12)
    receipt_ref: str | None = Field(default=None, min_length=1, max_length=64)


class GiftSpendIn(Body):
    amount: int = Field(ge=1, le=10**12, description="Rial to take from the card")
    receipt_ref: str = Field(min_length=1, max_length=64, description="the till's receipt the card pays for")


class UserIn(Body):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[^\s/]+$")
    role: Literal["cashier", "manager", "admin"]
    pin: str = Field(min_length=4, max_length=12, description="4 to 12 digits; managers and admins 6 or more")


class PinIn(Body):
    pin: str = Field(min_length=4, max_length=12)


class VerificationIn(Body):
    mobile: str = Field(min_length=1, max_length=32, description="the member's mobile, as typed")
    member_id: str | None = Field(default=None, min_length=1, max_length=36)


class VerificationCheckIn(Body):
    mobile: str = Field(min_length=1, max_length=32)
    code: str = Field(min_length=4, max_length=12, description="the code the member read back")
