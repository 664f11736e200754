"""Errors of the ledger. Each names what went wrong in words a store manager can act on.

    LedgerError
    ├── ValidationFailed          bad input (amounts, quantities, names, reasons)
    │   ├── InvalidMobile         a mobile number that is not an Iranian mobile
    │   ├── PaymentCardRefused    a bank card's number where a member or gift card belongs
    │   ├── CardOutOfRange        a number outside the programme's member card ranges
    │   └── LimitExceeded         an amount or sum past a bound that keeps every sum in int64
    ├── NotFound
    │   ├── UnknownMember
    │   ├── UnknownCard
    │   ├── UnknownSale
    │   └── UnknownGiftCard
    ├── Conflict
    │   ├── DuplicateCard         the card number is already issued
    │   ├── DuplicateMobile       another member has this mobile number
    │   ├── SharedMobile          two members (from two offline branches) share it: use the card
    │   ├── DuplicateGiftCard
    │   ├── IdempotencyConflict   same idempotency key, different request
    │   ├── RefundElsewhere       a sale is refunded at the till that made it
    │   ├── SaleArchived          a sale past the retention: refunded at head office, never posted twice
    │   ├── OtherStoreMember      a card issued to another store's member (the hub would refuse it)
    │   └── CardNotInStock        the chain issues only pre-printed cards of this store's stock
    ├── CardRefused
    │   ├── CardBlocked
    │   └── CardReplaced          names the replacement date
    ├── InsufficientPoints        redeeming more than the balance
    ├── InsufficientGiftBalance
    ├── RefundExceedsSale
    ├── DatabaseError             the SQLite file could not be read or written
    ├── IntegrityFailure          `ledger verify` found a bad entry or balance
    └── BackupError
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every ledger error. `code` is stable: the API and logs use it."""

    code = "ledger_error"
    exit_code = 1


class ValidationFailed(LedgerError):
    code = "invalid_input"


class InvalidMobile(ValidationFailed):
    code = "invalid_mobile"


class PaymentCardRefused(ValidationFailed):
    code = "bank_card"


class CardOutOfRange(ValidationFailed):
    code = "card_out_of_range"


class LimitExceeded(ValidationFailed):
    code = "limit_exceeded"


class NotFound(LedgerError):
    code = "not_found"


class UnknownMember(NotFound):
    code = "unknown_member"


class UnknownCard(NotFound):
    code = "unknown_card"


class UnknownSale(NotFound):
    code = "unknown_sale"


class UnknownGiftCard(NotFound):
    code = "unknown_gift_card"


class Conflict(LedgerError):
    code = "conflict"


class DuplicateCard(Conflict):
    code = "duplicate_card"


class DuplicateMobile(Conflict):
    code = "duplicate_mobile"


class SharedMobile(Conflict):
    code = "shared_mobile"


class DuplicateGiftCard(Conflict):
    code = "duplicate_gift_card"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class CardRefused(LedgerError):
    code = "card_refused"


class CardBlocked(CardRefused):
    code = "card_blocked"


class CardReplaced(CardRefused):
    code = "card_replaced"


class InsufficientPoints(LedgerError):
    code = "insufficient_points"


class InsufficientGiftBalance(LedgerError):
    code = "insufficient_gift_balance"


class RefundExceedsSale(LedgerError):
    code = "refund_exceeds_sale"


class RefundElsewhere(Conflict):
    code = "refund_elsewhere"


class SaleArchived(Conflict):
    code = "sale_archived"


class OtherStoreMember(Conflict):
    code = "other_store_member"


class CardNotInStock(Conflict):
    code = "card_not_in_stock"


class DatabaseError(LedgerError):
    code = "database_error"


class IntegrityFailure(LedgerError):
    code = "integrity_failure"


class BackupError(LedgerError):
    code = "backup_error"
