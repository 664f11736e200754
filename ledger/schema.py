"""The ledger's tables (SQLAlchemy Core). Alembic migrations in ledger/migrations create them;
a test checks that the migrations and this module agree.

Money is Rial and points are points: both `BigInteger`, never a float. Times are UTC,
stored as ISO-8601 text with a `Z` so they sort, hash and sync the same on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from ledger.timefmt import format_utc, parse_utc

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

ENTRY_KINDS = (
    "earn",
    "redeem",
    "bonus",
    "adjust",
    "expire",
    "reverse",
    "gift_load",
    "gift_spend",
    "tier",
)
CARD_STATUSES = ("active", "lost", "replaced", "blocked")
CARD_TECHNOLOGIES = ("magstripe", "contactless", "smartcard", "manual")
ROLES = ("cashier", "manager", "admin")


class UTCTime(TypeDecorator[datetime]):
    """Aware datetime <-> 'YYYY-MM-DDTHH:MM:SS.ffffffZ'."""

    impl = String(27)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else format_utc(value)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        return None if value is None else parse_utc(value)


def _enum_check(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


stores = Table(
    "stores",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
)

terminals = Table(
    "terminals",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("store_code", String(64), ForeignKey("stores.code"), nullable=False),
    # The next seq this terminal will give an entry, and the hash of its last entry:
    # both change in the same transaction as the entry, so the chain has no gaps.
    Column("next_seq", BigInteger, nullable=False, server_default="1"),
    Column("last_hash", String(64), nullable=False, server_default=""),
)

tiers = Table(
    "tiers",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("rank", Integer, nullable=False),
    Column("name_en", String(64), nullable=False),
    Column("name_fa", String(64), nullable=False),
)

members = Table(
    "members",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    # not unique: a customer enrolled at two offline branches is two members until merged
    # (enrolment checks that the mobile is free; lookup by mobile refuses to guess)
    Column("mobile", String(11), nullable=False, index=True),
    Column("birth_date", Date, nullable=True),
    Column("referrer_id", String(36), ForeignKey("members.id"), nullable=True),
    Column("tier", String(32), nullable=False),
    Column("segment", String(32), nullable=True),
    Column("enrolled_at", UTCTime, nullable=False),
    Column("enrolled_by", String(64), nullable=False),
    Column("store_code", String(64), nullable=False),
    # taken in the days of the old protocol, not seen here since: the hub is asked before
    # its balance is trusted (ledger.hubsync)
    Column("stale", Boolean, nullable=False, server_default="0"),
)

cards = Table(
    "cards",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("member_id", String(36), ForeignKey("members.id"), nullable=False, index=True),
    Column("technology", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("replaced_by", String(32), ForeignKey("cards.number"), nullable=True),
    Column("issued_at", UTCTime, nullable=False),
    Column("issued_by", String(64), nullable=False),
    Column("status_changed_at", UTCTime, nullable=True),
    Column("status_reason", String(200), nullable=True),
    _enum_check("status", CARD_STATUSES, "status"),
    _enum_check("technology", CARD_TECHNOLOGIES, "technology"),
)

gift_cards = Table(
    "gift_cards",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    # Rial on the card: a cache of the sum of its gift entries, checked by `ledger verify`.
    Column("balance", BigInteger, nullable=False),
    # Rial ever loaded: bounded (ledger.limits) so every sum of its entries fits int64.
    Column("loaded", BigInteger, nullable=False, server_default="0"),
    # Rial moved at other terminals, as the hub last said (their entries are not kept here)
    Column("elsewhere", BigInteger, nullable=False, server_default="0"),
    # Rial of this terminal's own entries archived past the retention (ledger.archive)
    Column("archived", BigInteger, nullable=False, server_default="0"),
    Column("issued_at", UTCTime, nullable=False),
    Column("issued_by", String(64), nullable=False),
    _enum_check("status", ("active", "blocked"), "status"),
)

sales = Table(
    "sales",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("original_sale_id", String(36), ForeignKey("sales.id"), nullable=True, index=True),
    Column("terminal_code", String(64), nullable=False),
    Column("member_id", String(36), ForeignKey("members.id"), nullable=False),
    Column("card_number", String(32), nullable=True),
    Column("receipt_ref", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("ruleset_hash", String(64), nullable=False),
    Column("created_at", UTCTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("result_json", Text, nullable=False),
    _enum_check("kind", ("sale", "refund"), "kind"),
)
# A sale's member snapshot (ledger.snapshots) reads these alone, never the table rows.
Index("ix_sales_member_kind_time", sales.c.member_id, sales.c.kind, sales.c.created_at, sales.c.amount)

sale_lines = Table(
    "sale_lines",
    metadata,
    Column("sale_id", String(36), ForeignKey("sales.id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("category", String(64), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    # For a refund line: the line of the original sale it returns.
    Column("original_line_no", Integer, nullable=True),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
)

entries = Table(
    "entries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("terminal_code", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("member_id", String(36), nullable=True),
    Column("card_number", String(32), nullable=True),
    Column("gift_card_number", String(32), nullable=True, index=True),
    Column("kind", String(16), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("sale_id", String(36), nullable=True, index=True),
    Column("receipt_ref", String(64), nullable=True),
    Column("rule_id", String(64), nullable=True),
    Column("reason", String(200), nullable=True),
    Column("actor", String(64), nullable=False),
    Column("ruleset_hash", String(64), nullable=False),
    Column("created_at", UTCTime, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("terminal_code", "seq", name="uq_entries_terminal_seq"),
    _enum_check("kind", ENTRY_KINDS, "kind"),
)
# Covering indexes for a sale's snapshot: points in the tier window and today, and the
# uses of each bonus rule, read from the index alone.
Index("ix_entries_member_time", entries.c.member_id, entries.c.created_at, entries.c.kind, entries.c.points,
      entries.c.rule_id)
Index("ix_entries_member_rule", entries.c.member_id, entries.c.kind, entries.c.rule_id, entries.c.created_at)

balances = Table(
    "balances",
    metadata,
    Column("member_id", String(36), ForeignKey("members.id"), primary_key=True),
    Column("points", BigInteger, nullable=False),
    # Points ever credited: bounded (ledger.limits) so every running sum of the member's
    # entries fits int64.
    Column("credited", BigInteger, nullable=False, server_default="0"),
    # points = this ledger's entries + elsewhere + archived_credit - archived_debit:
    # what other terminals did, as the hub last said (their entries are not kept here)
    Column("elsewhere", BigInteger, nullable=False, server_default="0"),
    # own entries archived past the retention (ledger.archive): their credits and debits
    Column("archived_credit", BigInteger, nullable=False, server_default="0"),
    Column("archived_debit", BigInteger, nullable=False, server_default="0"),
)

# Offer and bonus uses that are not in this ledger's entries: at other terminals (as the
# hub last said) and archived; a sale's snapshot adds them to its own count.
member_rule_uses = Table(
    "member_rule_uses",
    metadata,
    Column("member_id", String(36), ForeignKey("members.id"), primary_key=True),
    Column("rule_id", String(64), primary_key=True),
    Column("elsewhere", Integer, nullable=False, server_default="0"),
    Column("archived", Integer, nullable=False, server_default="0"),
    Column("last_used_at", String(27), nullable=True),
)

# Cards lost, blocked or replaced anywhere in the chain whose member this terminal does
# not hold: refused with the reason all the same (the hub sends the whole blocklist).
blocklist = Table(
    "blocklist",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("replaced_by", String(32), nullable=True),
    Column("changed_at", String(27), nullable=True),
    Column("reason", String(200), nullable=True),
)

# Where each local chain was archived up to (ledger.archive): `ledger verify` checks the
# chain from here.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("terminal_code", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("at", String(27), nullable=False),  # when the last archived entry was made
    # the sums of everything archived from this terminal, kept for `ledger verify`: the
    # members' archived credits and debits, gift cards' archived Rial, archived bonus
    # uses and the archived sales' count, net and gross Rial add up to these
    Column("credit", BigInteger, nullable=False, server_default="0"),
    Column("debit", BigInteger, nullable=False, server_default="0"),
    Column("gift", BigInteger, nullable=False, server_default="0"),
    Column("uses", BigInteger, nullable=False, server_default="0"),
    Column("sales", BigInteger, nullable=False, server_default="0"),
    Column("spend", BigInteger, nullable=False, server_default="0"),
    Column("gross", BigInteger, nullable=False, server_default="0"),
)

# Archived sales' and refunds' keys, kept a while past the sale (ledger.archive): a POS
# retry with one is refused rather than posted again, and a refund of one is told why.
archived_sales = Table(
    "archived_sales",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("terminal_code", String(64), nullable=False),
    Column("receipt_ref", String(64), nullable=False, index=True),
    Column("created_at", String(27), nullable=False, index=True),
)

# A member's archived sales, summed: the history a sale's snapshot needs of them.
member_stats = Table(
    "member_stats",
    metadata,
    Column("member_id", String(36), ForeignKey("members.id"), primary_key=True),
    Column("sales", BigInteger, nullable=False, server_default="0"),
    Column("spend", BigInteger, nullable=False, server_default="0"),  # net of refunds
    Column("gross", BigInteger, nullable=False, server_default="0"),  # sales only (the lifetime bound)
    Column("first_visit_at", String(27), nullable=True),
    Column("last_visit_at", String(27), nullable=True),
)

users = Table(
    "users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("pin_hash", String(200), nullable=False),
    Column("failed_attempts", Integer, nullable=False, server_default="0"),
    Column("locked_until", UTCTime, nullable=True),
    Column("created_at", UTCTime, nullable=False),
    # set by an admin: the user can no longer log in (kept for the audit log's names)
    Column("disabled_at", UTCTime, nullable=True),
    _enum_check("role", ROLES, "role"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(64), nullable=True),
    Column("detail", Text, nullable=False),
)

OUTBOX_KINDS = ("entry", "member", "card", "gift_card", "sale")

outbox = Table(
    "outbox",
    metadata,
    # One row per change to send to the hub, written in the change's own transaction:
    # an entry, or a directory row (member, card, gift card) named by `ref`, sent as it
    # stands when sent. One monotonic order for both: a member goes up before the
    # entries that name it, whatever the clock said.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entry_id", String(36), ForeignKey("entries.id"), nullable=True, unique=True),
    Column("created_at", UTCTime, nullable=False),
    Column("kind", String(16), nullable=False, server_default="entry"),
    Column("ref", String(36), nullable=True),
    _enum_check("kind", OUTBOX_KINDS, "kind"),
    CheckConstraint("(kind = 'entry') = (entry_id IS NOT NULL)", name="ref_or_entry"),
)


sync_state = Table(
    "sync_state",
    metadata,
    # One row: where this terminal stands with the hub.
    Column("id", Integer, primary_key=True),
    Column("hub_cursor", BigInteger, nullable=False, server_default="0"),
    Column("directory_since", String(27), nullable=False, server_default=""),
    Column("directory_rev", BigInteger, nullable=False, server_default="0"),
    Column("last_success_at", UTCTime, nullable=True),
    Column("last_attempt_at", UTCTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("ruleset_hash", String(64), nullable=True),
    Column("ruleset_toml", Text, nullable=True),
    # 1: other terminals' entries come down (the old protocol); 2: their sums (chain scale)
    Column("protocol", Integer, nullable=False, server_default="1"),
    # the chain's choice, as the hub last said: a card is issued here only from card_stock
    Column("card_stock_required", Boolean, nullable=False, server_default="0"),
)

CARD_STOCK_STATUSES = ("in_stock", "issued")

# Pre-printed cards head office assigned to this store (the hub sends them down): a card
# issued here is taken from it, offline; `issued` also when another till of the store
# issued it (the hub says so), so no two tills hand out one card.
card_stock = Table(
    "card_stock",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("batch", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued_at", String(27), nullable=True),
    Column("issued_by", String(64), nullable=True),  # a till user; null: issued at another till
    _enum_check("status", CARD_STOCK_STATUSES, "status"),
)
