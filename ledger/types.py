"""Requests and results of ledger operations: plain frozen data, ints for money and points."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from ledger import limits
from ledger.errors import ValidationFailed

LINES_PER_SALE_MAX = 500
QUANTITY_MAX = 1_000_000
UNIT_PRICE_MAX = 10**13  # Rial: far above any till price (a line's total has its own bound: ledger.limits)
TEXT_MAX = 200


def require_int(name: str, value: Any, *, minimum: int = 0, maximum: int | None = None) -> int:
    if type(value) is not int:
        raise ValidationFailed(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValidationFailed(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValidationFailed(f"{name} must be at most {maximum}, got {value}")
    return value


def require_text(name: str, value: Any, *, maximum: int = TEXT_MAX, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be text, got {value!r}")
    text = value.strip()
    if not text and not allow_empty:
        raise ValidationFailed(f"{name} must not be empty")
    if len(text) > maximum:
        raise ValidationFailed(f"{name} is longer than {maximum} characters")
    return text


@dataclass(frozen=True)
class SaleLine:
    sku: str
    name: str
    category: str
    quantity: int
    unit_price: int

    def __post_init__(self) -> None:
        require_text("line sku", self.sku, maximum=64)
        require_text("line name", self.name)
        require_text("line category", self.category, maximum=64)
        require_int("line quantity", self.quantity, minimum=1, maximum=QUANTITY_MAX)
        require_int("line unit_price", self.unit_price, minimum=0, maximum=UNIT_PRICE_MAX)
        limits.check("a line's total (quantity x unit_price)", self.quantity * self.unit_price,
                     limits.LINE_TOTAL_RIAL_MAX, "Rial")

    @property
    def total(self) -> int:
        return self.quantity * self.unit_price


def basket_total(lines: tuple[SaleLine, ...]) -> int:
    """The lines' total, within the bound of a sale (LimitExceeded past it)."""
    return limits.check("the sale's total", sum(line.total for line in lines), limits.SALE_AMOUNT_RIAL_MAX, "Rial")


@dataclass(frozen=True)
class SaleRequest:
    """A sale from the POS. The idempotency key makes a retry safe."""

    idempotency_key: str
    card_number: str
    receipt_ref: str
    lines: tuple[SaleLine, ...]
    redeem_points: int = 0
    actor: str = "pos"

    def __post_init__(self) -> None:
        require_text("idempotency key", self.idempotency_key, maximum=128)
        require_text("receipt reference", self.receipt_ref, maximum=64)
        require_int("redeem_points", self.redeem_points, minimum=0, maximum=limits.ENTRY_POINTS_MAX)
        if not self.lines:
            raise ValidationFailed("a sale needs at least one line")
        if len(self.lines) > LINES_PER_SALE_MAX:
            raise ValidationFailed(f"a sale may have at most {LINES_PER_SALE_MAX} lines")
        basket_total(self.lines)

    @property
    def amount(self) -> int:
        return sum(line.total for line in self.lines)

    def body(self) -> dict[str, Any]:
        """What the idempotency hash covers: everything but the key itself and the actor."""
        return {
            "card_number": self.card_number,
            "receipt_ref": self.receipt_ref,
            "redeem_points": self.redeem_points,
            # by hand, as asdict gives it for these flat lines (asdict deep-copies: a twentieth of a sale)
            "lines": [{"sku": x.sku, "name": x.name, "category": x.category, "quantity": x.quantity,
                       "unit_price": x.unit_price} for x in self.lines],
        }


@dataclass(frozen=True)
class RefundLine:
    line_no: int
    quantity: int


@dataclass(frozen=True)
class RefundRequest:
    """Return goods from a sale: `lines=None` refunds whatever is left of it."""

    idempotency_key: str
    sale_id: str
    lines: tuple[RefundLine, ...] | None = None
    actor: str = "pos"

    def body(self) -> dict[str, Any]:
        return {
            "sale_id": self.sale_id,
            "lines": None if self.lines is None else [asdict(x) for x in self.lines],
        }


@dataclass(frozen=True)
class AwardLine:
    rule_id: str
    kind: str
    points: int
    explanation_en: str
    explanation_fa: str
    rial: int = 0  # a credit or discount in Rial, where the rule gives one


@dataclass(frozen=True)
class SaleResult:
    sale_id: str
    member_id: str
    receipt_ref: str
    amount: int
    earned_points: int
    redeemed_points: int
    redeemed_rial: int
    balance: int
    tier: str
    awards: tuple[AwardLine, ...]
    created_at: str
    discount_rial: int = 0  # the tier discount the POS takes off the bill
    debt_points: int = 0  # points the member still owes after this sale (their balance below zero)
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies and was a tenth of a sale's time
        return {
            "sale_id": self.sale_id, "member_id": self.member_id, "receipt_ref": self.receipt_ref,
            "amount": self.amount, "earned_points": self.earned_points, "redeemed_points": self.redeemed_points,
            "redeemed_rial": self.redeemed_rial, "balance": self.balance, "tier": self.tier,
            "awards": [{"rule_id": a.rule_id, "kind": a.kind, "points": a.points, "explanation_en": a.explanation_en,
                        "explanation_fa": a.explanation_fa, "rial": a.rial} for a in self.awards],
            "created_at": self.created_at, "discount_rial": self.discount_rial, "debt_points": self.debt_points,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], replayed: bool) -> "SaleResult":
        awards = tuple(AwardLine(**a) for a in data.pop("awards"))
        return cls(**data, awards=awards, replayed=replayed)


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    sale_id: str
    member_id: str
    amount: int  # the goods' value returned
    reversed_points: int  # earned points taken back from the balance
    returned_points: int  # redeemed points given back
    balance: int
    created_at: str
    # earned points already spent, under the table's `refunds.spent_points`:
    settled_points: int = 0  # "deduct": paid for by deducted_rial instead of the balance
    deducted_rial: int = 0  # "deduct": their value, kept from the cash refunded
    debt_points: int = 0  # points the member owes after this refund (balance below zero)
    replayed: bool = False

    @property
    def cash_refund_rial(self) -> int:
        """What the cashier pays back (before any other payment means of the sale)."""
        return self.amount - self.deducted_rial

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("replayed")
        data["cash_refund_rial"] = self.cash_refund_rial
        return data


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    mobile: str
    birth_date: date | None
    referrer_id: str | None
    tier: str
    segment: str | None
    enrolled_at: datetime
    balance: int
    cards: tuple["Card", ...] = field(default=())


@dataclass(frozen=True)
class Card:
    number: str
    member_id: str
    technology: str
    status: str
    replaced_by: str | None
    issued_at: datetime
    issued_by: str
    status_changed_at: datetime | None
    status_reason: str | None
