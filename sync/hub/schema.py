"""The hub's tables (SQLAlchemy Core; the same on PostgreSQL and SQLite).

Entries are the terminals' own, byte for byte (the same hash chain), keyed by
entry id and by (terminal, seq); `ingest_id` orders them as the hub received them,
which is the cursor terminals follow downstream. Members, cards and gift cards are
the directory shared by every branch; each change takes a new `rev`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
})

TIME = String(27)  # the ledger's UTC text form (ledger.timefmt)

stores = Table(
    "stores", metadata,
    Column("code", String(64), primary_key=True),
    Column("created_at", TIME, nullable=False),
)

# The hub's own chain of entries (settlements, held adjustments) is a terminal row
# under this reserved id: revoked, with no usable secret, never enrolled.
HUB_TERMINAL = "hub"
HUB_STORE = "-"

terminals = Table(
    "terminals", metadata,
    Column("id", String(64), primary_key=True),
    Column("store", String(64), nullable=False),
    # The HMAC key. The hub must hold it to check signatures; protect the database
    # (and its backups) like a key store. A revoked terminal's key is kept for audit.
    Column("secret", String(128), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("created_at", TIME, nullable=False),
    Column("last_seen_at", TIME, nullable=True),
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("last_hash", String(64), nullable=False, default=""),
    # manual adjustments: this terminal's daily limit in points (null: the hub's
    # default), and how many points of them it made on `adjust_day` (the stores' date)
    Column("adjust_points_per_day", BigInteger, nullable=True),
    Column("adjust_day", String(10), nullable=True),
    Column("adjust_used", BigInteger, nullable=False, server_default="0"),
)

enrolment_codes = Table(
    "enrolment_codes", metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("store", String(64), nullable=False),
    Column("created_at", TIME, nullable=False),
    Column("expires_at", TIME, nullable=False),
    Column("used_by", String(64), nullable=True),
)

entries = Table(
    "entries", metadata,
    Column("ingest_id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("terminal_code", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("member_id", String(36), nullable=True, index=True),
    Column("card_number", String(32), nullable=True),
    Column("gift_card_number", String(32), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("sale_id", String(36), nullable=True),
    Column("receipt_ref", String(64), nullable=True),
    Column("rule_id", String(64), nullable=True),
    Column("reason", String(200), nullable=True),
    Column("actor", String(64), nullable=False),
    Column("ruleset_hash", String(64), nullable=False),
    Column("created_at", TIME, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # the hub's clock when the entry arrived (null: arrived before migration 0004)
    Column("received_at", TIME, nullable=True),
    UniqueConstraint("terminal_code", "seq", name="uq_entries_terminal_seq"),
)

# Entries whose time is implausible (see service.ENTRY_AHEAD_MAX): stored as sent,
# listed by `loyalty-hub reconcile`.
entry_time_flags = Table(
    "entry_time_flags", metadata,
    Column("entry_id", String(36), primary_key=True),
    Column("terminal_code", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("created_at", String(27), nullable=False),  # as the terminal wrote it
    Column("received_at", TIME, nullable=False),
    Column("flag", String(16), nullable=False),  # future | before_enrolment
)

members = Table(
    "members", metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("mobile", String(11), nullable=False, index=True),
    Column("birth_date", String(10), nullable=True),
    Column("referrer_id", String(36), nullable=True),
    Column("tier", String(32), nullable=False),
    Column("segment", String(32), nullable=True),
    Column("enrolled_at", TIME, nullable=False),
    Column("enrolled_by", String(64), nullable=False),
    Column("store_code", String(64), nullable=False),
    Column("rev", BigInteger, nullable=False, index=True),
)

cards = Table(
    "cards", metadata,
    Column("number", String(32), primary_key=True),
    Column("member_id", String(36), nullable=False),
    Column("technology", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("replaced_by", String(32), nullable=True),
    Column("issued_at", TIME, nullable=False),
    Column("issued_by", String(64), nullable=False),
    Column("status_changed_at", TIME, nullable=True),
    Column("status_reason", String(200), nullable=True),
    Column("rev", BigInteger, nullable=False, index=True),
)

gift_cards = Table(
    "gift_cards", metadata,
    Column("number", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("issued_at", TIME, nullable=False),
    Column("issued_by", String(64), nullable=False),
    Column("rev", BigInteger, nullable=False, index=True),
)

balances = Table(
    "balances", metadata,
    Column("member_id", String(36), primary_key=True),
    Column("points", BigInteger, nullable=False),
)

nonces = Table(
    "nonces", metadata,
    Column("terminal", String(64), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("seen_at", BigInteger, nullable=False, index=True),
)

rulesets = Table(
    "rulesets", metadata,
    Column("version", Integer, Identity(), primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("toml", Text, nullable=False),
    Column("published_at", TIME, nullable=False),
)

counters = Table(
    "counters", metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Who changed what, and when: every directory row a terminal writes, every decision
# made at the hub's command line. Never updated, never deleted.
audit = Table(
    "audit", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    Column("at", TIME, nullable=False),
    Column("actor", String(64), nullable=False),  # a terminal id, or the person named with --by
    Column("action", String(32), nullable=False),
    Column("target", String(64), nullable=False),  # the row's key: a member id, a card number...
    Column("detail", Text, nullable=False),  # JSON: what changed
)
Index("ix_audit_target", audit.c.target)

# The programme's member card ranges (ledger.cardpolicy.CardRange), set by head
# office with `loyalty-hub cards ranges set`; none: only payment cards are refused.
card_ranges = Table(
    "card_ranges", metadata,
    Column("position", Integer, primary_key=True),
    Column("prefix", String(32), nullable=False),
    Column("lengths", String(100), nullable=False),  # "16" or "10,12"
    Column("luhn", Boolean, nullable=False),
)

# Manual adjustments above their terminal's daily limit: stored (the chain stays
# whole) and cancelled at once by an entry of the hub's own chain (`hold_entry_id`),
# until someone approves them (the hub then gives the points: `release_entry_id`) or
# rejects them (nothing more is written).
held_adjustments = Table(
    "held_adjustments", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    Column("entry_id", String(36), nullable=False, unique=True),
    Column("terminal_code", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("member_id", String(36), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("reason", String(200), nullable=True),  # the terminal's
    Column("actor", String(64), nullable=False),  # who made it at the terminal
    Column("held_at", TIME, nullable=False),
    Column("hold_entry_id", String(36), nullable=False),
    Column("status", String(16), nullable=False),  # held | approved | rejected
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", TIME, nullable=True),
    Column("decision_reason", String(200), nullable=True),
    Column("release_entry_id", String(36), nullable=True),
)
Index("ix_held_adjustments_status", held_adjustments.c.status)

# How an overdrawn member was settled (`loyalty-hub reconcile settle`): written off
# (an entry of the hub's chain brings the balance to 0) or kept as a debt (a 0-point
# entry records the decision); `balance` is the balance at the decision.
settlements = Table(
    "settlements", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    Column("member_id", String(36), nullable=False, index=True),
    Column("decision", String(16), nullable=False),  # write-off | keep-debt
    Column("balance", BigInteger, nullable=False),
    Column("entry_id", String(36), nullable=False),
    Column("decided_by", String(64), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("decided_at", TIME, nullable=False),
)

# -- chain scale (protocol 2): what sales were made, and what each terminal needs -----

# Sales and refunds with their lines, as the tills made them: the back office's source.
sales = Table(
    "sales", metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(8), nullable=False),  # sale | refund
    Column("original_sale_id", String(36), nullable=True),
    Column("terminal_code", String(64), nullable=False),
    Column("store", String(64), nullable=False),
    Column("member_id", String(36), nullable=False),
    Column("card_number", String(32), nullable=True),
    Column("receipt_ref", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("ruleset_hash", String(64), nullable=False),
    Column("created_at", TIME, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("result_json", Text, nullable=False),
    Column("received_at", TIME, nullable=False),
)
Index("ix_sales_created_at", sales.c.created_at)
Index("ix_sales_member_id", sales.c.member_id, sales.c.created_at)
Index("ix_sales_store", sales.c.store, sales.c.created_at)

sale_lines = Table(
    "sale_lines", metadata,
    Column("sale_id", String(36), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("category", String(64), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("original_line_no", Integer, nullable=True),
    Column("created_at", TIME, nullable=False),  # the sale's, for reports by period
)
Index("ix_sale_lines_created_at", sale_lines.c.created_at)

# A store's scope: the members a terminal of that store receives (enrolled, seen or
# looked up there).
member_stores = Table(
    "member_stores", metadata,
    Column("member_id", String(36), primary_key=True),
    Column("store", String(64), primary_key=True),
    Column("since", TIME, nullable=False),
)
Index("ix_member_stores_store", member_stores.c.store, member_stores.c.member_id)

# Each terminal's part of each balance, so a terminal is told the points elsewhere
# (the member's balance minus its own part).
terminal_balances = Table(
    "terminal_balances", metadata,
    Column("member_id", String(36), primary_key=True),
    Column("terminal_code", String(64), primary_key=True),
    Column("points", BigInteger, nullable=False),
)

# Bonus and offer uses by member, rule and terminal: a member's per-member limits hold
# across the chain.
rule_uses = Table(
    "rule_uses", metadata,
    Column("member_id", String(36), primary_key=True),
    Column("rule_id", String(64), primary_key=True),
    Column("terminal_code", String(64), primary_key=True),
    Column("uses", BigInteger, nullable=False),
    Column("last_used_at", TIME, nullable=False),
)

# Each terminal's part of each gift card's balance.
gift_balances = Table(
    "gift_balances", metadata,
    Column("number", String(32), primary_key=True),
    Column("terminal_code", String(64), primary_key=True),
    Column("amount", BigInteger, nullable=False),
)

# A member's tier as the last `tier` entry from any terminal set it.
member_tiers = Table(
    "member_tiers", metadata,
    Column("member_id", String(36), primary_key=True),
    Column("tier", String(32), nullable=False),
    Column("changed_at", TIME, nullable=False),
)

# -- messages to members (sync/hub/messages) ----------------------------------------

ID = BigInteger().with_variant(Integer, "sqlite")

# What the sync saw that may call for a message: one small row per relevant entry or
# new member, written in the sync's own transaction; a worker turns them into
# messages after it commits, and deletes them.
message_events = Table(
    "message_events", metadata,
    Column("id", ID, Identity(), primary_key=True),
    Column("source", String(8), nullable=False),  # entry | member
    Column("ref", String(36), nullable=False),  # the entry's or the member's id
    Column("at", TIME, nullable=False),  # the hub's clock when the sync stored it
)

# Every message, once per trigger and member (`key`), queued here and sent by workers
# that claim it with a lease. status: queued -> sending -> sent -> delivered |
# undelivered, or failed / suppressed / cancelled, with the reason.
messages = Table(
    "messages", metadata,
    Column("id", ID, Identity(), primary_key=True),
    Column("key", String(120), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("template", String(64), nullable=False),
    Column("member_id", String(36), nullable=True, index=True),
    Column("mobile", String(11), nullable=False, index=True),
    Column("store", String(64), nullable=True),
    Column("locale", String(2), nullable=False),
    Column("body", Text, nullable=False),
    Column("parts", Integer, nullable=False),
    Column("campaign_id", BigInteger, nullable=True, index=True),
    Column("occurred_at", TIME, nullable=False),  # what it is about happened then: its max age counts from here
    Column("created_at", TIME, nullable=False),
    Column("due_at", TIME, nullable=False),  # not before
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_until", TIME, nullable=True),  # a `sending` message is its worker's until then
    Column("gateway", String(32), nullable=True),
    Column("provider_id", String(64), nullable=True),
    Column("reason", String(200), nullable=True),
    Column("sent_at", TIME, nullable=True),
    Column("done_at", TIME, nullable=True),  # delivered, failed, suppressed or cancelled then
)
Index("ix_messages_status_due", messages.c.status, messages.c.due_at)
Index("ix_messages_provider", messages.c.gateway, messages.c.provider_id)

# Choices of a mobile number's owner, per kind of message or "all": out (by reply,
# or at the command line) or in (receipts in opt-in mode).
message_prefs = Table(
    "message_prefs", metadata,
    Column("mobile", String(11), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("choice", String(4), nullable=False),  # in | out
    Column("source", String(16), nullable=False),  # reply | cli
    Column("at", TIME, nullable=False),
)

# Delivery reports and inbound messages as received (reports that came before their
# message was recorded sent are applied when it is).
message_reports = Table(
    "message_reports", metadata,
    Column("id", ID, Identity(), primary_key=True),
    Column("gateway", String(32), nullable=False),
    Column("provider_id", String(64), nullable=True),
    Column("mobile", String(11), nullable=True),
    Column("status", String(16), nullable=False),  # delivered | undelivered | inbound
    Column("detail", String(200), nullable=True),
    Column("at", TIME, nullable=False),
    Column("applied", Boolean, nullable=False),
)
Index("ix_message_reports_provider", message_reports.c.gateway, message_reports.c.provider_id)

# Codes that confirm a member's mobile: stored hashed, with an expiry and a count of tries.
verifications = Table(
    "verifications", metadata,
    Column("id", ID, Identity(), primary_key=True),
    Column("mobile", String(11), nullable=False, index=True),
    Column("member_id", String(36), nullable=True),
    Column("code_hash", String(64), nullable=False),
    Column("salt", String(32), nullable=False),
    Column("created_at", TIME, nullable=False),
    Column("expires_at", TIME, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("verified_at", TIME, nullable=True),
    Column("terminal", String(64), nullable=True),  # the till that asked; null: the hub on the member's arrival
)

verified_mobiles = Table(
    "verified_mobiles", metadata,
    Column("mobile", String(11), primary_key=True),
    Column("verified_at", TIME, nullable=False),
    Column("verification_id", BigInteger, nullable=False),
)

campaigns = Table(
    "campaigns", metadata,
    Column("id", ID, Identity(), primary_key=True),
    Column("template", String(64), nullable=False),
    Column("segment", String(32), nullable=True),
    Column("tier", String(32), nullable=True),
    Column("store", String(64), nullable=True),
    Column("created_at", TIME, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("due_at", TIME, nullable=False),
    Column("status", String(16), nullable=False),  # scheduled | cancelled
    Column("control_percent", Integer, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("recipients", Integer, nullable=False),
    Column("control", Integer, nullable=False),
)

# Who a campaign was for: messaged, or held out as its control group.
campaign_members = Table(
    "campaign_members", metadata,
    Column("campaign_id", BigInteger, primary_key=True),
    Column("member_id", String(36), primary_key=True),
    Column("control", Boolean, nullable=False),
)

# A gift card's holder to tell of loads and spends (gift cards name nobody in the ledger).
gift_card_contacts = Table(
    "gift_card_contacts", metadata,
    Column("number", String(32), primary_key=True),
    Column("mobile", String(11), nullable=False),
    Column("at", TIME, nullable=False),
)

# Daily jobs (birthdays, expiry warnings): the local day each last ran, so one worker runs each once a day.
message_jobs = Table(
    "message_jobs", metadata,
    Column("name", String(32), primary_key=True),
    Column("last_day", String(10), nullable=False),
)

# -- pre-printed card stock (sync/hub/stock.py) ---------------------------------------

# A delivery of printed cards, as head office imported it (`loyalty-hub cards stock import`).
card_batches = Table(
    "card_batches", metadata,
    Column("name", String(64), primary_key=True),
    Column("cards", Integer, nullable=False),
    Column("source", String(200), nullable=False),  # the range or the file it came from
    Column("imported_at", TIME, nullable=False),
    Column("imported_by", String(64), nullable=False),
)

# Each printed card: at head office (in_stock), assigned to a store, or issued (the
# hub received it from a terminal). `rev` is the directory's: a store's terminals
# follow their stock with it (scope.py).
card_stock = Table(
    "card_stock", metadata,
    Column("number", String(32), primary_key=True),
    Column("batch", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # in_stock | assigned | issued
    Column("store", String(64), nullable=True),
    Column("assigned_at", TIME, nullable=True),
    Column("assigned_by", String(64), nullable=True),
    Column("issued_at", TIME, nullable=True),  # the hub's clock when the card arrived
    Column("issued_terminal", String(64), nullable=True),
    Column("rev", BigInteger, nullable=True),
)
Index("ix_card_stock_batch", card_stock.c.batch, card_stock.c.status, card_stock.c.number)
Index("ix_card_stock_store", card_stock.c.store, card_stock.c.rev)

# Cards a terminal issued that were not in its store's stock: recorded at ingest (the
# card was already handed out: never refused), listed by `loyalty-hub verify` when the
# chain required stock then.
card_stock_outside = Table(
    "card_stock_outside", metadata,
    Column("id", ID, Identity(), primary_key=True),
    Column("number", String(32), nullable=False, index=True),
    Column("terminal_code", String(64), nullable=False),
    Column("store", String(64), nullable=False),
    Column("member_id", String(36), nullable=True),
    Column("why", String(16), nullable=False),  # not_in_stock | head_office | other_store
    Column("required", Boolean, nullable=False),
    Column("received_at", TIME, nullable=False),
)
