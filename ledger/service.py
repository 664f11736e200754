"""The ledger's operations. Each is one `BEGIN IMMEDIATE` transaction: all or nothing.

`Ledger` is the only writer API: the daemon holds one; tests and the CLI's offline
commands open one on a file. Sales and refunds live in `ledger.sales`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import jdatetime
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from ledger import db, limits, stock
from ledger.errors import (
    CardBlocked,
    CardReplaced,
    DuplicateCard,
    DuplicateGiftCard,
    DuplicateMobile,
    OtherStoreMember,
    InsufficientGiftBalance,
    SharedMobile,
    UnknownCard,
    UnknownGiftCard,
    UnknownMember,
    ValidationFailed,
)
from ledger.mobile import looks_like_mobile, normalise_mobile
from ledger.timefmt import parse_utc
from ledger.schema import CARD_TECHNOLOGIES, balances, cards, gift_cards, members, stores, terminals, tiers
from ledger.cardpolicy import CardPolicy, normalise_card_number
from ledger.types import Card, Member, require_int, require_text
from ledger.writer import NewEntry, append_entries, audit, queue_for_hub

Clock = Callable[[], datetime]
ADJUST_POINTS_MAX = 10_000_000
GIFT_AMOUNT_MAX = limits.GIFT_AMOUNT_RIAL_MAX
_CARD_SQL = ("SELECT number, member_id, technology, status, replaced_by, issued_at, issued_by, status_changed_at, "
             "status_reason FROM cards WHERE number = ?")  # read on every sale: plain SQL
_BLOCKLIST_SQL = "SELECT status, replaced_by, changed_at, reason FROM blocklist WHERE number = ?"
NO_RULESET = "-" * 64  # entries that no ruleset produced (adjustments, gift cards)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def describe_date(at: datetime) -> str:
    """`2026-11-24 (1405-09-03)`: Gregorian and Jalali, since managers read both."""
    local = at.astimezone(timezone.utc)
    jalali = jdatetime.date.fromgregorian(date=local.date())
    return f"{local:%Y-%m-%d} ({jalali.strftime('%Y-%m-%d')})"


def mask_card(number: str) -> str:
    return number if len(number) <= 4 else f"…{number[-4:]}"


class Ledger:
    """Operations on one ledger file for one terminal of one store."""

    def __init__(
        self,
        engine: Engine,
        *,
        store: str,
        terminal: str,
        ruleset: Any = None,
        clock: Clock = utc_now,
        card_policy: CardPolicy | None = None,
    ) -> None:
        from ledger.rulesource import effective_ruleset

        self.engine = engine
        self.store = store
        self.terminal = terminal
        # the hub's table, once taken, wins over the configured one (ledger.rulesource)
        self.ruleset = effective_ruleset(engine, ruleset)
        self.clock = clock
        # which numbers are member cards: the same policy as the readers, the hub and sync
        self.card_policy = card_policy if card_policy is not None else CardPolicy()
        self._register_terminal()

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        store: str = "main",
        terminal: str = "T1",
        ruleset: Any = None,
        busy_timeout_ms: int = db.BUSY_TIMEOUT_MS_DEFAULT,
        clock: Clock = utc_now,
        card_policy: CardPolicy | None = None,
    ) -> "Ledger":
        """Open (creating and upgrading as needed) the ledger file."""
        engine = db.create_ledger_engine(path, busy_timeout_ms=busy_timeout_ms)
        db.upgrade(engine)
        return cls(engine, store=store, terminal=terminal, ruleset=ruleset, clock=clock, card_policy=card_policy)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self, action: str) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE); database trouble becomes DatabaseError."""
        with db.translate_db_errors(action), self.engine.begin() as conn:
            yield conn

    def checkpoint(self) -> tuple[int, int]:
        """Copy the WAL into the database file without blocking writers (PASSIVE); the
        WAL's frames and how many of them are now in the file. The daemon calls this
        every few seconds from a worker thread."""
        with db.translate_db_errors("checkpointing the ledger"), self.engine.connect() as conn:
            # on the driver's connection, outside any transaction: SQLAlchemy would open
            # one (BEGIN IMMEDIATE here), and SQLite refuses to checkpoint inside it
            dbapi = conn.connection.driver_connection
            _, frames, done = dbapi.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # type: ignore[union-attr]
            return int(frames), int(done)

    def archive(self, now: datetime | None = None, retention_days: int | None = None, *, batch: int | None = None,
                dry_run: bool = False, actor: str = "system", stop: Callable[[], bool] = lambda: False) -> Any:
        """Archive own entries and sales the hub holds that are past the retention, a
        batch per transaction (ledger.archive); returns an ArchiveReport."""
        from ledger import archive

        return archive.archive(self, now=now, retention_days=retention_days or archive.RETENTION_DAYS_DEFAULT,
                               batch=batch or archive.ARCHIVE_BATCH_ROWS, dry_run=dry_run, actor=actor, stop=stop)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent view, without the write lock."""
        with db.translate_db_errors("reading the ledger"), self.engine.connect() as conn:
            conn.execution_options(**{db.READ_ONLY_OPTION: True})
            yield conn

    def _register_terminal(self) -> None:
        with self.write("registering the terminal") as conn:
            if conn.execute(select(stores.c.code).where(stores.c.code == self.store)).first() is None:
                conn.execute(insert(stores).values(code=self.store, name=self.store))
            if conn.execute(select(terminals.c.code).where(terminals.c.code == self.terminal)).first() is None:
                conn.execute(insert(terminals).values(code=self.terminal, store_code=self.store))
            self._sync_tiers(conn)

    def adopt_ruleset(self, conn: Connection, ruleset: Any, toml_text: str) -> None:
        """Take a table the hub published, inside the caller's transaction: kept in the
        ledger, so every later open applies it too (ledger.rulesource)."""
        db.Raw(conn).run("UPDATE sync_state SET ruleset_hash = ?, ruleset_toml = ? WHERE id = 1",
                         (ruleset.hash, toml_text))
        self.ruleset = ruleset
        self._sync_tiers(conn)

    def _sync_tiers(self, conn: Connection) -> None:
        for rank, tier in enumerate(self.ruleset.tiers):
            row = {"rank": rank, "name_en": tier.name_en, "name_fa": tier.name_fa}
            if conn.execute(select(tiers.c.code).where(tiers.c.code == tier.id)).first() is None:
                conn.execute(insert(tiers).values(code=tier.id, **row))
            else:
                conn.execute(update(tiers).where(tiers.c.code == tier.id).values(**row))

    # -- reading ---------------------------------------------------------------

    def member(self, member_id: str) -> Member:
        with self.read() as conn:
            return self._member(conn, member_id)

    def _member(self, conn: Connection, member_id: str) -> Member:
        row = conn.execute(
            select(members, balances.c.points)
            .join(balances, balances.c.member_id == members.c.id)
            .where(members.c.id == member_id)
        ).one_or_none()
        if row is None:
            raise UnknownMember(f"no member with id {member_id}")
        card_rows = conn.execute(select(cards).where(cards.c.member_id == member_id).order_by(cards.c.issued_at))
        return Member(
            id=row.id,
            name=row.name,
            mobile=row.mobile,
            birth_date=row.birth_date,
            referrer_id=row.referrer_id,
            tier=row.tier,
            segment=row.segment,
            enrolled_at=row.enrolled_at,
            balance=int(row.points),
            cards=tuple(Card(**r._mapping) for r in card_rows),
        )

    def find_member(self, card_or_mobile: str) -> Member:
        """A member by mobile number or by an active card; a refused card raises why."""
        with self.read() as conn:
            return self._member(conn, self._resolve_member_id(conn, card_or_mobile))

    def _resolve_member_id(self, conn: Connection, card_or_mobile: str) -> str:
        text = require_text("card number or mobile", card_or_mobile, maximum=40)
        if looks_like_mobile(text):
            mobile = normalise_mobile(text)
            rows = conn.execute(select(members.c.id).where(members.c.mobile == mobile).limit(2)).all()
            if not rows:
                raise UnknownMember(f"no member has the mobile number {mobile}")
            if len(rows) > 1:
                raise SharedMobile(f"the mobile number {mobile} belongs to more than one member (enrolled at two "
                                   "branches while they were offline; the hub lists it for a merge): "
                                   "use the member's card")
            return str(rows[0].id)
        return self._usable_card(conn, text).member_id

    def card(self, number: str) -> Card:
        with self.read() as conn:
            return self._card(conn, normalise_card_number(number))

    def _card(self, conn: Connection, number: str) -> Card:
        row = db.Raw(conn).one_or_none(_CARD_SQL, (number,))
        if row is None:
            self._refuse_blocklisted(conn, number)
            raise UnknownCard(f"card {mask_card(number)} is not issued to any member")
        num, member_id, tech, status, replaced_by, issued_at, issued_by, changed_at, reason = row
        return Card(num, member_id, tech, status, replaced_by, parse_utc(issued_at), issued_by,
                    parse_utc(changed_at) if changed_at else None, reason)

    def _refuse_blocklisted(self, conn: Connection, number: str) -> None:
        """A card lost, blocked or replaced at another branch whose member this till does
        not hold: refused with the reason all the same (the hub's blocklist)."""
        row = db.Raw(conn).one_or_none(_BLOCKLIST_SQL, (number,))
        if row is None:
            return
        status, replaced_by, changed_at, reason = row
        when = describe_date(parse_utc(changed_at)) if changed_at else "an earlier date"
        if status == "replaced":
            raise CardReplaced(f"card {mask_card(number)} was replaced on {when}"
                               + (f" by card {mask_card(replaced_by)}" if replaced_by else "")
                               + "; ask the member for the new card")
        raise CardBlocked(f"card {mask_card(number)} was {'reported lost' if status == 'lost' else 'blocked'} on "
                          f"{when}" + (f": {reason}" if reason else ""))

    def holding(self, card_or_mobile: str) -> str:
        """Whether this till can answer for a card or mobile by itself: "held" (or
        refused here with a reason), "stale" (held from the old protocol's days, not
        seen here since: ask the hub if it answers), "unknown" (ask the hub), "refused"
        (not a member card at all: nobody need be asked)."""
        text = str(card_or_mobile).strip()
        with self.read() as conn:
            raw = db.Raw(conn)
            if looks_like_mobile(text):
                rows = raw.all("SELECT stale FROM members WHERE mobile = ? LIMIT 2", (normalise_mobile(text),))
            else:
                try:
                    number = self.card_policy.accept(text)
                except ValidationFailed:
                    return "refused"
                rows = raw.all("SELECT m.stale FROM cards c JOIN members m ON m.id = c.member_id "
                               "WHERE c.number = ?", (number,))
                if not rows and raw.one_or_none(_BLOCKLIST_SQL, (number,)) is not None:
                    return "held"
        if not rows:
            return "unknown"
        return "stale" if any(r[0] for r in rows) else "held"

    def _usable_card(self, conn: Connection, number: str) -> Card:
        """The card if a cashier may use it; else the reason it is refused (invariants 7
        and 10: a bank card or a number outside the ranges is refused before any lookup)."""
        card = self._card(conn, self.card_policy.accept(number))
        when = describe_date(card.status_changed_at) if card.status_changed_at else "an earlier date"
        if card.status == "replaced":
            raise CardReplaced(
                f"card {mask_card(card.number)} was replaced on {when} by card "
                f"{mask_card(card.replaced_by or '')}; ask the member for the new card"
            )
        if card.status in ("blocked", "lost"):
            why = "reported lost" if card.status == "lost" else "blocked"
            reason = f": {card.status_reason}" if card.status_reason else ""
            raise CardBlocked(f"card {mask_card(card.number)} was {why} on {when}{reason}")
        return card

    def balance(self, member_id: str) -> int:
        with self.read() as conn:
            row = conn.execute(select(balances.c.points).where(balances.c.member_id == member_id)).first()
        if row is None:
            raise UnknownMember(f"no member with id {member_id}")
        return int(row.points)

    # -- members and cards ------------------------------------------------------

    def enrol_member(
        self,
        *,
        name: str,
        mobile: str,
        actor: str,
        birth_date: date | None = None,
        referrer: str | None = None,
        segment: str | None = None,
    ) -> Member:
        """Enrol a member (and credit the sign-up bonus, if the loyalty table has one)."""
        from ledger.rules import signup_bonus

        name = require_text("member name", name)
        mobile = normalise_mobile(mobile)
        actor = require_text("actor", actor, maximum=64)
        if birth_date is not None and not isinstance(birth_date, date):
            raise ValidationFailed(f"birth date must be a date, got {birth_date!r}")
        at = self.clock()
        if birth_date is not None and birth_date > at.date():
            raise ValidationFailed(f"birth date {birth_date} is in the future")
        member_id = str(uuid.uuid4())
        with self.write("enrolling a member") as conn:
            if conn.execute(select(members.c.id).where(members.c.mobile == mobile)).first() is not None:
                raise DuplicateMobile(f"another member already has the mobile number {mobile}")
            referrer_id = self._resolve_member_id(conn, referrer) if referrer else None
            conn.execute(
                insert(members).values(
                    id=member_id,
                    name=name,
                    mobile=mobile,
                    birth_date=birth_date,
                    referrer_id=referrer_id,
                    tier=self.ruleset.tiers[0].id,
                    segment=segment,
                    enrolled_at=at,
                    enrolled_by=actor,
                    store_code=self.store,
                )
            )
            conn.execute(insert(balances).values(member_id=member_id, points=0))
            queue_for_hub(conn, "member", member_id, at)  # before its sign-up bonus entry
            bonus = signup_bonus(self.ruleset, at)
            if bonus is not None and bonus.points > 0:
                append_entries(
                    conn,
                    self.terminal,
                    [NewEntry(kind="bonus", points=bonus.points, amount=0, member_id=member_id,
                              rule_id=bonus.rule_id, reason="sign-up bonus")],
                    actor=actor,
                    ruleset_hash=self.ruleset.hash,
                    at=at,
                )
            audit(conn, at=at, actor=actor, action="member.enrol", target=member_id, referrer=referrer_id)
            return self._member(conn, member_id)

    def issue_card(self, *, member_id: str, number: str, technology: str, actor: str) -> Card:
        number = self.card_policy.accept(number)
        actor = require_text("actor", actor, maximum=64)
        if technology not in CARD_TECHNOLOGIES:
            raise ValidationFailed(f"card technology must be one of {', '.join(CARD_TECHNOLOGIES)}, got {technology!r}")
        at = self.clock()
        with self.write("issuing a card") as conn:
            home = conn.execute(select(members.c.store_code).where(members.c.id == member_id)).scalar()
            if home is None:
                raise UnknownMember(f"no member with id {member_id}")
            if home != self.store:
                # the hub's rule too (what a branch may do to another store's member): the card
                # would be refused there, and this till's sync with it
                raise OtherStoreMember(f"this member belongs to store {home}: a branch may replace or block a "
                                       "visiting member's card, not issue another; issue it at their store")
            self._insert_card(conn, number, member_id, technology, actor, at)
            from_stock = stock.take(conn, number, actor, at)
            queue_for_hub(conn, "card", number, at)
            audit(conn, at=at, actor=actor, action="card.issue", target=member_id, card=mask_card(number),
                  from_stock=from_stock)
            return self._card(conn, number)

    def _insert_card(self, conn: Connection, number: str, member_id: str, technology: str, actor: str, at: datetime) -> None:
        if conn.execute(select(cards.c.number).where(cards.c.number == number)).first() is not None:
            raise DuplicateCard(f"card {mask_card(number)} is already issued; use another card")
        try:
            conn.execute(
                insert(cards).values(
                    number=number, member_id=member_id, technology=technology, status="active",
                    issued_at=at, issued_by=actor,
                )
            )
        except IntegrityError:  # pragma: no cover - the check above runs under the write lock
            raise DuplicateCard(f"card {mask_card(number)} is already issued") from None

    def replace_card(self, *, old_number: str, new_number: str, actor: str, reason: str = "lost",
                     technology: str | None = None) -> Card:
        """The new card takes over the account; the old one is refused from now on."""
        old_number = normalise_card_number(old_number, "old card number")
        new_number = self.card_policy.accept(new_number, "new card number")
        reason = require_text("reason", reason)
        actor = require_text("actor", actor, maximum=64)
        if old_number == new_number:
            raise ValidationFailed("the new card number is the same as the old one")
        at = self.clock()
        with self.write("replacing a card") as conn:
            old = self._card(conn, old_number)
            if old.status == "replaced":
                raise CardReplaced(
                    f"card {mask_card(old_number)} was already replaced by card {mask_card(old.replaced_by or '')}"
                )
            tech = technology or old.technology
            if tech not in CARD_TECHNOLOGIES:
                raise ValidationFailed(f"card technology must be one of {', '.join(CARD_TECHNOLOGIES)}")
            self._insert_card(conn, new_number, old.member_id, tech, actor, at)
            from_stock = stock.take(conn, new_number, actor, at)
            conn.execute(
                update(cards)
                .where(cards.c.number == old_number)
                .values(status="replaced", replaced_by=new_number, status_changed_at=at, status_reason=reason)
            )
            queue_for_hub(conn, "card", new_number, at)
            queue_for_hub(conn, "card", old_number, at)
            audit(conn, at=at, actor=actor, action="card.replace", target=old.member_id,
                  old_card=mask_card(old_number), new_card=mask_card(new_number), reason=reason,
                  from_stock=from_stock)
            return self._card(conn, new_number)

    def block_card(self, *, number: str, actor: str, reason: str, lost: bool = True) -> Card:
        number = normalise_card_number(number)
        reason = require_text("reason", reason)
        actor = require_text("actor", actor, maximum=64)
        at = self.clock()
        with self.write("blocking a card") as conn:
            card = self._card(conn, number)
            if card.status == "replaced":
                raise CardReplaced(f"card {mask_card(number)} was replaced; it is already refused")
            status = "lost" if lost else "blocked"
            conn.execute(
                update(cards).where(cards.c.number == number)
                .values(status=status, status_changed_at=at, status_reason=reason)
            )
            queue_for_hub(conn, "card", number, at)
            audit(conn, at=at, actor=actor, action="card.block", target=card.member_id,
                  card=mask_card(number), status=status, reason=reason)
            return self._card(conn, number)

    # -- adjustments ------------------------------------------------------------

    def adjust(self, *, member_id: str, points: int, reason: str, actor: str) -> int:
        """A manager's correction (positive or negative), with a reason; returns the new balance."""
        require_int("adjustment points", points, minimum=-ADJUST_POINTS_MAX, maximum=ADJUST_POINTS_MAX)
        if points == 0:
            raise ValidationFailed("an adjustment of 0 points changes nothing")
        reason = require_text("reason", reason)
        actor = require_text("actor", actor, maximum=64)
        at = self.clock()
        with self.write("adjusting points") as conn:
            member = self._member(conn, member_id)
            if member.balance + points < 0:
                raise ValidationFailed(
                    f"the adjustment would take the balance below zero ({member.balance} + {points})"
                )
            append_entries(conn, self.terminal,
                           [NewEntry(kind="adjust", points=points, amount=0, member_id=member_id, reason=reason)],
                           actor=actor, ruleset_hash=NO_RULESET, at=at)
            audit(conn, at=at, actor=actor, action="points.adjust", target=member_id, points=points, reason=reason)
            return member.balance + points

    # -- gift cards ---------------------------------------------------------------

    def gift_issue(self, *, number: str, amount: int, actor: str) -> int:
        number = self.card_policy.not_payment(number, "gift card number")
        require_int("gift card amount", amount, minimum=0, maximum=GIFT_AMOUNT_MAX)
        actor = require_text("actor", actor, maximum=64)
        at = self.clock()
        with self.write("issuing a gift card") as conn:
            if conn.execute(select(gift_cards.c.number).where(gift_cards.c.number == number)).first():
                raise DuplicateGiftCard(f"gift card {mask_card(number)} is already issued")
            conn.execute(insert(gift_cards).values(number=number, status="active", balance=0, issued_at=at,
                                                   issued_by=actor))
            queue_for_hub(conn, "gift_card", number, at)
            if amount:
                append_entries(conn, self.terminal,
                               [NewEntry(kind="gift_load", points=0, amount=amount, gift_card_number=number)],
                               actor=actor, ruleset_hash=NO_RULESET, at=at)
            audit(conn, at=at, actor=actor, action="gift.issue", target=mask_card(number), amount=amount)
        return amount

    def gift_load(self, *, number: str, amount: int, actor: str) -> int:
        require_int("gift card amount", amount, minimum=1, maximum=GIFT_AMOUNT_MAX)
        return self._gift_move(number, amount, actor, "gift_load", None)

    def gift_spend(self, *, number: str, amount: int, actor: str, receipt_ref: str) -> int:
        require_int("gift card amount", amount, minimum=1, maximum=GIFT_AMOUNT_MAX)
        receipt_ref = require_text("receipt reference", receipt_ref, maximum=64)
        return self._gift_move(number, -amount, actor, "gift_spend", receipt_ref)

    def gift_balance(self, number: str) -> int:
        number = normalise_card_number(number, "gift card number")
        with self.read() as conn:
            row = conn.execute(select(gift_cards.c.balance).where(gift_cards.c.number == number)).first()
        if row is None:
            raise UnknownGiftCard(f"gift card {mask_card(number)} is not issued")
        return int(row.balance)

    def _gift_move(self, number: str, amount: int, actor: str, kind: str, receipt_ref: str | None) -> int:
        number = normalise_card_number(number, "gift card number")
        actor = require_text("actor", actor, maximum=64)
        at = self.clock()
        with self.write("moving gift card value") as conn:
            row = conn.execute(select(gift_cards).where(gift_cards.c.number == number)).one_or_none()
            if row is None:
                raise UnknownGiftCard(f"gift card {mask_card(number)} is not issued")
            if row.status != "active":
                raise CardBlocked(f"gift card {mask_card(number)} is blocked")
            if row.balance + amount < 0:
                raise InsufficientGiftBalance(
                    f"gift card {mask_card(number)} holds {row.balance} Rial; cannot spend {-amount}"
                )
            append_entries(conn, self.terminal,
                           [NewEntry(kind=kind, points=0, amount=amount, gift_card_number=number,
                                     receipt_ref=receipt_ref)],
                           actor=actor, ruleset_hash=NO_RULESET, at=at)
            audit(conn, at=at, actor=actor, action=f"gift.{kind.split('_')[1]}", target=mask_card(number),
                  amount=abs(amount), receipt_ref=receipt_ref)
            return int(row.balance + amount)
