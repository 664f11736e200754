"""Store life, chosen step by step from the simulation's one random source: members
enrol (the same mobile at two offline branches too), cards are issued, lost,
replaced and blocked, sales earn and redeem, refunds (partial, full, after the points
were spent), gift cards, adjustments, expiry and tier reviews, the POS retrying with
the same key, bad input; and around it the world: time passing (seasons, Nowruz,
birthdays), NTP steps, network faults and partitions, crashes, backups and restores,
a new loyalty table at the hub. Every operation goes through the project's own code
(Ledger, post_sale, refund, lifecycle, SyncClient.sync_once, Hub)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import httpx
import jdatetime

from ledger import backup as backups
from ledger.cardpolicy import SHETAB_PREFIXES, CardPolicy, payment_network
from ledger.errors import (
    CardRefused,
    DatabaseError,
    IdempotencyConflict,
    InsufficientGiftBalance,
    InsufficientPoints,
    LedgerError,
    ValidationFailed,
)
from ledger.lifecycle import expire_points, review_tiers
from ledger.rules import tier_review_due
from ledger.rules.dates import local_date
from ledger.sales import post_sale, quote, refund
from ledger.limits import LINE_TOTAL_RIAL_MAX, SALE_AMOUNT_RIAL_MAX
from ledger.types import RefundLine, RefundRequest, SaleLine, SaleRequest
from sim.audit import Acked
from sim.scan import luhn_complete, scan_sqlite
from sync.errors import HubRefused, HubUnreachable

if TYPE_CHECKING:
    from sim.core import Simulation
    from sim.nodes import TerminalNode

P_CRASH_IN_OP = 0.03  # a POS operation during which the terminal dies
BACKUPS_KEPT = 2
CATEGORIES = ("grocery", "dairy", "bakery", "household", "tobacco")
PRICES = (20_000, 95_000, 150_000, 480_000, 1_250_000, 3_900_000, 9_000_000, 27_000_000)
DEFAULT_TABLE = Path(__file__).resolve().parents[1] / "ledger" / "rules" / "default.toml"
HUGE_PRICE = 9_999_999_999_999  # just under UNIT_PRICE_MAX; a Rial amount no till sees
P_PERSIAN_DIGITS = 0.08  # a card number keyed on a Persian keypad (or sent so by the POS)
PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ASCII_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")

WEIGHTS: dict[str, float] = {
    "sale": 30, "sale_redeem": 10, "retry": 5, "refund": 7, "enrol": 8, "issue_card": 3, "replace_card": 2,
    "block_card": 2, "gift": 5, "adjust": 3, "bad_input": 4, "expiry": 1, "tier_review": 1,
    "sync": 18, "time": 10, "ntp": 3, "net_faults": 3, "partition": 2, "crash_terminal": 1.5,
    "crash_hub": 0.7, "backup": 4, "restore": 0.6, "publish": 1, "double_spend": 2,
}
TERMINAL_ACTIONS = {"sale", "sale_redeem", "retry", "refund", "enrol", "issue_card", "replace_card", "block_card",
                    "gift", "adjust", "bad_input", "expiry", "tier_review", "sync", "backup", "restore",
                    "crash_terminal"}


def jalali_boundaries(start: datetime, years: int = 2) -> list[tuple[datetime, str]]:
    """Midnights (Iran time) where the default table changes: Nowruz (tier review day,
    high season), its end, the summer low season and its end."""
    out = []
    for jy in range(jdatetime.date.fromgregorian(date=start.date()).year, start.year - 621 + years + 1):
        for (jm, jd), what in (((1, 1), "Nowruz"), ((1, 14), "Nowruz ends"), ((4, 1), "summer season"),
                               ((6, 1), "summer ends")):
            g = jdatetime.date(jy, jm, jd).togregorian()
            out.append((datetime(g.year, g.month, g.day, tzinfo=timezone.utc) - timedelta(minutes=210),
                        f"{what} {jy}"))
    return sorted(out)


class Workload:
    def __init__(self, sim: "Simulation") -> None:
        self.sim = sim
        self.n = 0  # numbering of keys, receipts, members
        self.pending: dict[str, SaleRequest] = {}  # terminal -> a sale the POS still waits an answer for
        self.table_text = DEFAULT_TABLE.read_text()
        self.policy = CardPolicy()

    @property
    def rng(self) -> Any:
        return self.sim.rng

    @property
    def model(self) -> Any:
        return self.sim.auditor.model

    def log(self, text: str) -> None:
        self.sim.log(text)

    def next_n(self) -> int:
        self.n += 1
        return self.n

    # -- choosing ----------------------------------------------------------------------------

    def step(self) -> "TerminalNode | None":
        names = list(WEIGHTS)
        action = self.rng.choices(names, weights=[WEIGHTS[a] for a in names])[0]
        if action in TERMINAL_ACTIONS:
            t = self.rng.choice(self.sim.terminals)
            if not t.up:
                self.log(f"{t.code} {action}: the terminal is down")
                return None
            getattr(self, f"do_{action}")(t)
            return t if t.up else None
        getattr(self, f"do_{action}")()
        return None

    # -- numbers ---------------------------------------------------------------------------------

    def member_number(self) -> str:
        while True:
            number = f"6395{self.rng.randrange(10**12):012d}"
            if number not in self.model.used_numbers and self.policy.refusal(number) is None:
                self.model.used_numbers[number] = "member"
                return number

    def gift_number(self) -> str:
        while True:
            number = f"7{self.rng.randrange(10**15):015d}"
            if number not in self.model.used_numbers and payment_network(number) is None:
                self.model.used_numbers[number] = "gift"
                return number

    def bank_number(self) -> str:
        kind = self.rng.choice(("fixed", "visa", "mastercard", "shetab"))
        if kind == "fixed":
            return self.rng.choice(("4111111111111111", "6037991234567893", "5555555555554444"))
        if kind == "visa":
            return luhn_complete("4" + "".join(str(self.rng.randrange(10)) for _ in range(14)))
        if kind == "mastercard":
            return luhn_complete(f"5{self.rng.randint(1, 5)}" + "".join(str(self.rng.randrange(10)) for _ in range(13)))
        prefix = self.rng.choice(SHETAB_PREFIXES)
        return luhn_complete(prefix + "".join(str(self.rng.randrange(10)) for _ in range(9)))

    def lines(self, big: bool = False) -> tuple[SaleLine, ...]:
        count = self.rng.choice((1, 1, 2, 3, 4))
        return tuple(SaleLine(sku=f"SKU{self.rng.randint(1, 40)}", name=f"item {i}",
                              category=self.rng.choice(CATEGORIES), quantity=self.rng.choice((1, 1, 1, 2, 3)),
                              unit_price=self.rng.choice(PRICES[-3:] if big else PRICES))
                     for i in range(1, count + 1))

    # -- running a POS operation -----------------------------------------------------------------

    def pos(self, t: "TerminalNode", fn: Callable[[], Any], defect: str | None = None,
            one_transaction: bool = True) -> tuple[str, Any]:
        """("ok", result), ("refused", error) or ("crashed", error): with a small chance
        the terminal dies in the middle (SQLite abandons the statement; nothing commits).
        Anything but a LedgerError is an unclean refusal (`defect`: the known one it is)."""
        armed = self.rng.random() < P_CRASH_IN_OP and not self.sim.healed
        seq = self.seq_of(t) if armed else 0
        if armed:
            t.arm_crash(self.rng.randint(1, 24))
        try:
            return "ok", fn()
        except LedgerError as exc:
            if armed and t.crash_fired:
                self.sim.crash_terminal(t, mid_operation=True)
                if one_transaction:  # expiry and tier reviews commit member by member, by design
                    t.seq_at_crash = seq
                return "crashed", exc
            return "refused", exc
        except Exception as exc:  # noqa: BLE001 - what the till would see as a crash of the agent
            if armed and t.crash_fired:
                raise
            self.sim.auditor.violation("unclean_error", f"{t.code}: {type(exc).__name__}: {str(exc)[:200]}", defect)
            exc.code = "unclean_error"  # type: ignore[attr-defined]
            return "refused", exc
        finally:
            t.disarm()

    def seq_of(self, t: "TerminalNode") -> int:
        return int(t.sql("SELECT next_seq FROM terminals WHERE code = ?", (t.code,))[0][0])

    def balance_of(self, t: "TerminalNode", member_id: str) -> int | None:
        rows = t.sql("SELECT points FROM balances WHERE member_id = ?", (member_id,))
        return int(rows[0][0]) if rows else None

    def unchanged_after_refusal(self, t: "TerminalNode", seq_before: int, what: str) -> None:
        if t.up and self.seq_of(t) != seq_before:
            self.sim.auditor.violation("refusal_changes_nothing", f"{t.code}: {what} was refused but entries were "
                                       "written")

    def no_negative_by_local_op(self, t: "TerminalNode", member_id: str, before: int | None, what: str,
                                defect: str | None = None) -> None:
        after = self.balance_of(t, member_id)
        if after is not None and after < 0 and (before is None or after < before):
            self.sim.auditor.violation("local_negative_balance", f"{t.code}: {what} took member "
                                       f"{self.model.label(member_id)} from {before} to {after} points", defect)

    def cards_at(self, t: "TerminalNode", active: bool | None = None) -> list[tuple[str, str, str]]:
        rows = t.sql("SELECT number, member_id, status FROM cards ORDER BY number")
        if active is not None:
            rows = [r for r in rows if (r[2] == "active") == active]
        return rows

    def shop_elsewhere(self, t: "TerminalNode", redeem: bool) -> bool:
        """A member of another store presents their card here: as the local API does
        (terminal_agent.remote), a card this till does not hold is looked up at the
        hub first (through the simulated network); then the sale goes as any other."""
        others = [o for o in self.sim.terminals if o is not t and o.up and o.store != t.store]
        if not others:
            return False
        cards = self.cards_at(self.rng.choice(others), active=True)
        if not cards:
            return False
        number, member_id, _ = self.rng.choice(cards)
        holding = t.ledger.holding(number)  # type: ignore[union-attr]
        if holding in ("unknown", "stale") and t.client is not None:
            try:
                t.client.lookup(number)
                self.log(f"{t.code} looks up …{number[-4:]} at the hub -> {self.model.label(member_id)}")
            except (HubUnreachable, HubRefused) as exc:
                self.log(f"{t.code} looks up …{number[-4:]} at the hub -> {type(exc).__name__}: the POS is told "
                         "unknown_offline")
                return True
        lines = self.lines(big=False)
        n = self.next_n()
        req = SaleRequest(f"{t.code}-x{n}", number, f"R-x{n}", lines)
        self.post(t, req, expect_ok=True)  # held now: a sale that redeems nothing must go through
        return True

    def members_at(self, t: "TerminalNode") -> list[tuple[str, str, str]]:
        return t.sql("SELECT id, name, mobile FROM members ORDER BY name")

    # -- sales -------------------------------------------------------------------------------------

    def do_sale(self, t: "TerminalNode", redeem: bool = False) -> None:
        if t.code in self.pending:  # the POS heard nothing last time: the same key and body again
            req = self.pending.pop(t.code)
            self.log(f"{t.code} POS resends {req.idempotency_key} after the terminal came back")
            self.post(t, req, expect_ok=False)
            return
        if self.rng.random() < 0.15 and self.shop_elsewhere(t, redeem):
            return
        cards = self.cards_at(t)
        if not cards:
            self.do_enrol(t)
            return
        active = [c for c in cards if c[2] == "active"]
        number, member_id, status = self.rng.choice(active if active and self.rng.random() < 0.9 else cards)
        lines = self.lines(big=self.rng.random() < 0.15)
        points = 0
        if redeem:
            try:
                plan = quote(t.ledger, number, lines)  # type: ignore[arg-type]
                points = plan.max_redeem_points
                if points and self.rng.random() < 0.3:
                    points = max(100, points - points % 100 - 100)
                if self.rng.random() < 0.1:
                    points = max(0, self.balance_of(t, member_id) or 0) + 1000  # more than the member has
            except LedgerError:
                points = 0
        n = self.next_n()
        if self.rng.random() < P_PERSIAN_DIGITS:  # the same card, keyed in Persian digits: the same member
            number = number.translate(PERSIAN_DIGITS)
        req = SaleRequest(idempotency_key=f"{t.code}-s{n}", card_number=number, receipt_ref=f"R{n}", lines=lines,
                          redeem_points=points)
        self.post(t, req, expect_ok=(status == "active" and points == 0))

    def do_sale_redeem(self, t: "TerminalNode") -> None:
        self.do_sale(t, redeem=True)

    def post(self, t: "TerminalNode", req: SaleRequest, expect_ok: bool, defect: str | None = None,
             error_defect: str | None = None) -> None:
        m = self.model
        card = t.sql("SELECT member_id, status FROM cards WHERE number = ?",
                     (req.card_number.translate(ASCII_DIGITS),))
        member_id = card[0][0] if card else None
        before = self.balance_of(t, member_id) if member_id else None
        seq = self.seq_of(t)
        what = f"{t.code} sale {req.idempotency_key} {m.label(member_id)} …{req.card_number[-4:]} " \
               f"{req.lines[0].quantity}x{len(req.lines)} lines {sum(x.total for x in req.lines)} Rial " \
               f"redeem {req.redeem_points}"
        if sum(x.total for x in req.lines) >= 2**63:
            error_defect = "huge-amount-overflow"
        outcome, result = self.pos(t, lambda: post_sale(t.ledger, req), error_defect)  # type: ignore[arg-type]
        if outcome == "crashed":
            self.log(f"{what} -> terminal died mid-sale")
            self.pending[t.code] = req
            return
        if outcome == "refused":
            self.log(f"{what} -> refused {result.code}")
            self.unchanged_after_refusal(t, seq, f"sale {req.idempotency_key}")
            if expect_ok and not req.card_number.isascii() and isinstance(result, ValidationFailed):
                self.sim.auditor.violation("card_digits_normalised", f"{t.code}: the card …"
                                           f"{req.card_number[-4:].translate(ASCII_DIGITS)} of member "
                                           f"{m.label(member_id)}, keyed in Persian digits, was refused: {result}")
            if expect_ok and not isinstance(result, CardRefused):
                known = "negative-balance-refused" if isinstance(result, InsufficientPoints) and (before or 0) < 0 \
                    else defect
                self.sim.auditor.violation("zero_redeem_refused", f"{t.code}: member {m.label(member_id)} with "
                                           f"{before} points was refused a sale redeeming nothing: {result}", known)
            return
        res = result
        extras = "".join(f" +{a.rule_id}" for a in res.awards if a.kind != "earn" and (a.points or a.rial))
        self.log(f"{what} -> ok earned {res.earned_points}{extras} redeemed {res.redeemed_points} balance "
                 f"{res.balance} tier {res.tier}{' (replayed)' if res.replayed else ''}")
        answer = res.to_json()
        key = (t.code, req.idempotency_key)
        if key in m.by_key and m.by_key[key] not in m.lost:
            first = m.acked[m.by_key[key]]
            if first.answer != answer:
                self.sim.auditor.violation("idempotent_replay", f"{t.code}: {req.idempotency_key} answered "
                                           f"differently the second time")
            return
        m.acked[res.sale_id] = Acked("sale", t.code, req.idempotency_key, req, answer, self.sim.step)
        m.by_key[key] = res.sale_id
        if res.balance != self.balance_of(t, res.member_id):
            self.sim.auditor.violation("answer_matches_ledger", f"{t.code}: sale {req.idempotency_key} answered "
                                       f"balance {res.balance}, the ledger holds {self.balance_of(t, res.member_id)}")
        if not res.replayed:
            self.no_negative_by_local_op(t, res.member_id, before, f"sale {req.idempotency_key}")

    def do_double_spend(self) -> None:
        """A member shops at two branches that have not heard of each other's sale
        since, redeeming at each what that branch thinks the member has."""
        up = [t for t in self.sim.terminals if t.up]
        if len(up) < 2:
            return
        a, b = self.rng.sample(up, 2)
        at_a = {n: mid for n, mid, _ in self.cards_at(a, active=True)}
        at_b = {n: mid for n, mid, _ in self.cards_at(b, active=True)}
        both = [n for n in sorted(at_a) if n in at_b and (self.balance_of(a, at_a[n]) or 0) >= 100
                and (self.balance_of(b, at_b[n]) or 0) >= 100]
        if not both:
            self.log(f"{a.code}+{b.code}: no member with points known at both")
            return
        number = self.rng.choice(both)
        self.log(f"{a.code}+{b.code}: {self.model.label(at_a[number])} redeems at both branches")
        for t in (a, b):
            if not t.up:
                continue
            lines = self.lines(big=True)
            try:
                points = quote(t.ledger, number, lines).max_redeem_points  # type: ignore[arg-type]
            except LedgerError:
                points = 0
            n = self.next_n()
            self.post(t, SaleRequest(idempotency_key=f"{t.code}-s{n}", card_number=number, receipt_ref=f"R{n}",
                                     lines=lines, redeem_points=points), expect_ok=points == 0)

    def probe_sale(self, t: "TerminalNode", number: str, points: int) -> None:
        n = self.next_n()
        req = SaleRequest(idempotency_key=f"{t.code}-probe{n}", card_number=number, receipt_ref=f"P{n}",
                          lines=(SaleLine("SKU1", "bread", "bakery", 1, 150_000),))
        self.log(f"{t.code} probe: a member at {points} points buys bread, redeeming nothing")
        self.post(t, req, expect_ok=True)

    def do_retry(self, t: "TerminalNode") -> None:
        """The POS sends a key again: with the same body it must get the first answer; with
        another body it must be refused."""
        m = self.model
        keys = [i for (term, _), i in m.by_key.items() if term == t.code and i not in m.lost]
        if not keys:
            self.do_sale(t)
            return
        a = m.acked[self.rng.choice(keys)]
        same = self.rng.random() < 0.7
        req = a.request
        if not same:
            if a.kind == "sale":
                req = SaleRequest(idempotency_key=req.idempotency_key, card_number=req.card_number,
                                  receipt_ref=req.receipt_ref + "x", lines=req.lines, redeem_points=req.redeem_points)
            else:
                req = RefundRequest(idempotency_key=req.idempotency_key, sale_id=req.sale_id,
                                    lines=(RefundLine(1, 1),) if req.lines is None else None)
        fn = (lambda: post_sale(t.ledger, req)) if a.kind == "sale" else (lambda: refund(t.ledger, req))  # type: ignore[arg-type]
        outcome, result = self.pos(t, fn)
        what = f"{t.code} POS retries {a.key} with {'the same' if same else 'another'} body"
        if outcome == "crashed":
            self.log(f"{what} -> terminal died")
            return
        if outcome == "refused":
            self.log(f"{what} -> refused {result.code}")
            if same or not isinstance(result, IdempotencyConflict):
                self.sim.auditor.violation("idempotent_replay", f"{what}: refused ({result})")
            return
        self.log(f"{what} -> answered (replayed={result.replayed})")
        if not same:
            self.sim.auditor.violation("idempotent_replay", f"{what}: accepted a different body under a used key")
        elif result.to_json() != a.answer or not result.replayed:
            self.sim.auditor.violation("idempotent_replay", f"{what}: the answer differs from the first")

    def do_refund(self, t: "TerminalNode") -> None:
        m = self.model
        sales = t.sql("SELECT id, idempotency_key, member_id FROM sales WHERE kind = 'sale' "
                      "ORDER BY idempotency_key")
        if not sales:
            self.do_sale(t)
            return
        sale_id, key, member_id = self.rng.choice(sales)
        lines: tuple[RefundLine, ...] | None = None
        if self.rng.random() < 0.5:
            sold = t.sql("SELECT line_no, quantity FROM sale_lines WHERE sale_id = ? ORDER BY line_no", (sale_id,))
            no, qty = self.rng.choice(sold)
            lines = (RefundLine(no, self.rng.randint(1, qty)),)
        n = self.next_n()
        req = RefundRequest(idempotency_key=f"{t.code}-r{n}", sale_id=sale_id, lines=lines)
        before = self.balance_of(t, member_id)
        seq = self.seq_of(t)
        what = f"{t.code} refund {req.idempotency_key} of {key} ({m.label(member_id)}, {before} points) " \
               f"{'whole' if lines is None else f'line {lines[0].line_no} x{lines[0].quantity}'}"
        outcome, result = self.pos(t, lambda: refund(t.ledger, req))  # type: ignore[arg-type]
        if outcome != "ok":
            self.log(f"{what} -> {outcome} {getattr(result, 'code', '')}")
            if outcome == "refused":
                self.unchanged_after_refusal(t, seq, f"refund {req.idempotency_key}")
            return
        self.log(f"{what} -> ok reversed {result.reversed_points} returned {result.returned_points} "
                 f"balance {result.balance}")
        m.acked[result.refund_id] = Acked("refund", t.code, req.idempotency_key, req, result.to_json(),
                                          self.sim.step)
        m.by_key[(t.code, req.idempotency_key)] = result.refund_id
        # a refund of points already spent may make a debt (the table's refunds.spent_points),
        # but only an explicit one: the answer says what the member owes
        if result.balance < 0 and result.debt_points != -result.balance:
            self.sim.auditor.violation("debt_explicit", f"{t.code}: refund {req.idempotency_key} left member "
                                       f"{m.label(member_id)} at {result.balance} points but told the POS of a "
                                       f"debt of {result.debt_points}")

    # -- members and cards ------------------------------------------------------------------------

    def do_enrol(self, t: "TerminalNode") -> None:
        m = self.model
        n = self.next_n()
        others = [mob for mob, store in m.mobiles if store != t.store]
        if others and self.rng.random() < 0.12:
            mobile = self.rng.choice(others)  # the same person at another branch
        else:
            mobile = f"0912{self.rng.randrange(10**7):07d}"
        born = None
        if self.rng.random() < 0.7:
            soon = self.sim.world.now.date() + timedelta(days=self.rng.randint(0, 120))
            born = date(self.rng.randint(1960, 2005), soon.month, min(soon.day, 28))
        referrer = None
        members = self.members_at(t)
        if members and self.rng.random() < 0.2:
            referrer = self.rng.choice(members)[2]
        behind = t.clock.behind() > DIRECTORY_MARGIN
        label = f"M{n}"
        outcome, result = self.pos(t, lambda: t.ledger.enrol_member(  # type: ignore[union-attr]
            name=label, mobile=mobile, actor="manager", birth_date=born, referrer=referrer))
        what = f"{t.code} enrol {label} {mobile}{' referred' if referrer else ''}" \
               f"{' (clock behind)' if behind else ''}"
        if outcome != "ok":
            self.log(f"{what} -> {outcome} {getattr(result, 'code', '')}")
            return
        m.labels[result.id] = label
        m.mobiles.append((mobile, t.store))
        m.enrolled.setdefault(t.code, {})[result.id] = behind
        self.log(f"{what} -> ok balance {result.balance}")
        if self.rng.random() < 0.85:
            self.issue(t, result.id, label)

    def issue(self, t: "TerminalNode", member_id: str, label: str, number: str | None = None) -> None:
        number = number or self.member_number()
        behind = t.clock.behind() > DIRECTORY_MARGIN
        outcome, result = self.pos(t, lambda: t.ledger.issue_card(  # type: ignore[union-attr]
            member_id=member_id, number=number, technology=self.rng.choice(("magstripe", "contactless")),
            actor="manager"))
        self.log(f"{t.code} issue card …{number[-4:]} to {label} -> {outcome} {getattr(result, 'code', '')}")
        if outcome == "ok":
            self.model.card_status.setdefault(t.code, {})[number] = ("active", behind)

    def do_issue_card(self, t: "TerminalNode") -> None:
        members = self.members_at(t)
        if not members:
            self.do_enrol(t)
            return
        member_id, label, _ = self.rng.choice(members)
        self.issue(t, member_id, label)

    def do_replace_card(self, t: "TerminalNode", new: str | None = None) -> None:
        cards = [c for c in self.cards_at(t) if c[2] != "replaced"]
        if not cards:
            return
        # a member who lost their card away from home asks the branch they are at (its
        # old and new card must then reach the hub together: the hub takes another
        # store's member's new card only beside the one it replaces)
        visiting = {r[0] for r in t.sql("SELECT id FROM members WHERE store_code <> ?", (t.store,))}
        away = [c for c in cards if c[1] in visiting]
        old, member_id, _ = self.rng.choice(away if away and self.rng.random() < 0.5 else cards)
        new = new or self.member_number()
        behind = t.clock.behind() > DIRECTORY_MARGIN
        outcome, result = self.pos(t, lambda: t.ledger.replace_card(  # type: ignore[union-attr]
            old_number=old, new_number=new, actor="manager", reason="lost"))
        self.log(f"{t.code} replace card …{old[-4:]} of {self.model.label(member_id)} by …{new[-4:]} -> {outcome} "
                 f"{getattr(result, 'code', '')}")
        if outcome == "ok":
            status = self.model.card_status.setdefault(t.code, {})
            status[old] = ("replaced", behind)
            status[new] = ("active", behind)

    def do_block_card(self, t: "TerminalNode") -> None:
        cards = self.cards_at(t, active=True)
        if not cards:
            return
        number, member_id, _ = self.rng.choice(cards)
        lost = self.rng.random() < 0.6
        behind = t.clock.behind() > DIRECTORY_MARGIN
        outcome, result = self.pos(t, lambda: t.ledger.block_card(  # type: ignore[union-attr]
            number=number, actor="manager", reason="reported by the member", lost=lost))
        self.log(f"{t.code} {'lost' if lost else 'block'} card …{number[-4:]} of {self.model.label(member_id)} -> "
                 f"{outcome} {getattr(result, 'code', '')}")
        if outcome == "ok":
            self.model.card_status.setdefault(t.code, {})[number] = ("lost" if lost else "blocked", behind)

    # -- gift cards and adjustments ---------------------------------------------------------------------

    def do_gift(self, t: "TerminalNode") -> None:
        gifts = t.sql("SELECT number, balance FROM gift_cards ORDER BY number")
        choice = self.rng.random()
        if not gifts or choice < 0.3:
            number, amount = self.gift_number(), self.rng.choice((0, 500_000, 2_000_000, 10_000_000))
            behind = t.clock.behind() > DIRECTORY_MARGIN
            outcome, result = self.pos(t, lambda: t.ledger.gift_issue(  # type: ignore[union-attr]
                number=number, amount=amount, actor="manager"))
            self.log(f"{t.code} gift issue …{number[-4:]} {amount} -> {outcome} {getattr(result, 'code', '')}")
            if outcome == "ok":
                self.model.gifts.setdefault(t.code, {})[number] = behind
            return
        number, balance = self.rng.choice(gifts)
        if choice < 0.5:
            amount = self.rng.choice((100_000, 1_000_000))
            outcome, result = self.pos(t, lambda: t.ledger.gift_load(  # type: ignore[union-attr]
                number=number, amount=amount, actor="manager"))
            self.log(f"{t.code} gift load …{number[-4:]} {amount} -> {outcome} {getattr(result, 'code', result)}")
            return
        over = self.rng.random() < 0.15
        amount = int(balance) + 1 if over or balance <= 0 else self.rng.randint(1, int(balance))
        seq = self.seq_of(t)
        outcome, result = self.pos(t, lambda: t.ledger.gift_spend(  # type: ignore[union-attr]
            number=number, amount=amount, actor="pos", receipt_ref=f"G{self.next_n()}"))
        self.log(f"{t.code} gift spend …{number[-4:]} {amount} of {balance} -> {outcome} "
                 f"{getattr(result, 'code', result)}")
        if outcome == "ok" and amount > balance:
            self.sim.auditor.violation("bad_input_refused", f"{t.code}: gift card …{number[-4:]} paid {amount} "
                                       f"holding {balance}")
        if outcome == "refused":
            self.unchanged_after_refusal(t, seq, "gift spend")
            if amount <= balance and not isinstance(result, (InsufficientGiftBalance, CardRefused)):
                self.sim.auditor.violation("gift_spend_refused", f"{t.code}: {result}")

    def do_adjust(self, t: "TerminalNode") -> None:
        members = self.members_at(t)
        if not members:
            return
        member_id, label, _ = self.rng.choice(members)
        before = self.balance_of(t, member_id) or 0
        kind = self.rng.random()
        points = self.rng.choice((50, 200, 1000)) if kind < 0.5 else -self.rng.randint(1, max(1, before)) \
            if kind < 0.85 else self.rng.choice((0, 10**9, -(before + 1)))
        bad = points == 0 or abs(points) > 10_000_000 or before + points < 0
        seq = self.seq_of(t)
        outcome, result = self.pos(t, lambda: t.ledger.adjust(  # type: ignore[union-attr]
            member_id=member_id, points=points, reason="manager's correction", actor="manager"))
        self.log(f"{t.code} adjust {label} {points:+d} (had {before}) -> {outcome} {getattr(result, 'code', result)}")
        if outcome == "ok" and bad:
            self.sim.auditor.violation("bad_input_refused", f"{t.code}: adjustment {points:+d} of {label} at "
                                       f"{before} points was accepted")
        if outcome == "refused":
            self.unchanged_after_refusal(t, seq, "adjustment")
        if outcome == "ok":
            self.no_negative_by_local_op(t, member_id, before, f"adjustment {points:+d}")

    # -- bad input ----------------------------------------------------------------------------------------

    def do_bad_input(self, t: "TerminalNode") -> None:
        m = self.model
        kind = self.rng.choice(("bank_issue", "bank_replace", "bank_gift", "bank_sale", "negative_price",
                                "huge_amount", "unknown_card", "redeem_too_much"))
        seq = self.seq_of(t)
        if kind in ("bank_issue", "bank_replace", "bank_gift"):
            number = self.bank_number()
            spoilt = number
            members = self.members_at(t)
            if kind == "bank_issue" and members:
                member_id, label, _ = self.rng.choice(members)
                fn: Callable[[], Any] = lambda: t.ledger.issue_card(  # type: ignore[union-attr]
                    member_id=member_id, number=number, technology="magstripe", actor="manager")
            elif kind == "bank_replace" and self.cards_at(t, active=True):
                old = self.rng.choice(self.cards_at(t, active=True))[0]
                spoilt = old
                fn = lambda: t.ledger.replace_card(  # type: ignore[union-attr]
                    old_number=old, new_number=number, actor="manager", reason="lost")
            else:
                kind = "bank_gift"
                fn = lambda: t.ledger.gift_issue(number=number, amount=100_000, actor="manager")  # type: ignore[union-attr]
            outcome, result = self.pos(t, fn)
            self.log(f"{t.code} bad input {kind}: {number[:6]}…{number[-4:]} -> {outcome} "
                     f"{getattr(result, 'code', '')}")
            if outcome == "ok":
                defect = "bank-card-issued" if kind != "bank_gift" else "bank-card-as-gift-card"
                if self.sim.auditor.violation("payment_card_refused", f"{t.code}: {kind.replace('_', ' ')} took "
                                              f"the payment card {number[:6]}…{number[-4:]}", defect):
                    m.bank_accepted[number] = defect
                    if kind == "bank_gift":
                        m.tainted_gifts[number] = defect
                    else:
                        m.tainted_cards[number] = defect
                        m.tainted_cards[spoilt] = defect  # the card it replaced points at it
                return
            self.unchanged_after_refusal(t, seq, kind)
            self.not_stored(t, number)
            return
        if kind == "bank_sale":
            number = self.bank_number()
            n = self.next_n()
            req = SaleRequest(idempotency_key=f"{t.code}-s{n}", card_number=number, receipt_ref=f"R{n}",
                              lines=self.lines())
            outcome, result = self.pos(t, lambda: post_sale(t.ledger, req))  # type: ignore[arg-type]
            self.log(f"{t.code} bad input: sale on bank card {number[:6]}…{number[-4:]} -> {outcome} "
                     f"{getattr(result, 'code', '')}")
            if outcome == "ok" and number not in m.bank_accepted:
                self.sim.auditor.violation("bad_input_refused", f"{t.code}: a sale on a payment card was accepted")
            if outcome == "refused":
                self.unchanged_after_refusal(t, seq, "a sale on a payment card")
                self.not_stored(t, number)
            return
        if kind == "negative_price":
            try:
                SaleLine(sku="SKU1", name="x", category="grocery", quantity=1, unit_price=-self.rng.randint(1, 10**6))
            except ValidationFailed as exc:
                self.log(f"{t.code} bad input: negative price -> refused {exc.code}")
                return
            self.sim.auditor.violation("bad_input_refused", "a sale line with a negative price was accepted")
        cards = self.cards_at(t, active=True)
        if kind == "unknown_card" or not cards:
            n = self.next_n()
            req = SaleRequest(idempotency_key=f"{t.code}-s{n}", card_number=self.member_number(),
                              receipt_ref=f"R{n}", lines=self.lines())
            outcome, result = self.pos(t, lambda: post_sale(t.ledger, req))  # type: ignore[arg-type]
            self.log(f"{t.code} bad input: unknown card -> {outcome} {getattr(result, 'code', '')}")
            if outcome == "ok":
                self.sim.auditor.violation("bad_input_refused", f"{t.code}: a sale on a card never issued was accepted")
            if outcome == "refused":
                self.unchanged_after_refusal(t, seq, "a sale on an unknown card")
            return
        number, member_id, _ = self.rng.choice(cards)
        n = self.next_n()
        if kind == "huge_amount":
            sizes = [(self.rng.choice((1, 1000, 1_000_000)), HUGE_PRICE) for _ in range(self.rng.randint(1, 3))]

            def huge_sale() -> Any:  # the request is checked as the POS's body is: inside the attempt
                lines = tuple(SaleLine(sku=f"SKU{i}", name="gold bar", category="household", quantity=q,
                                       unit_price=p) for i, (q, p) in enumerate(sizes, start=1))
                return post_sale(t.ledger, SaleRequest(idempotency_key=f"{t.code}-s{n}", card_number=number,  # type: ignore[arg-type]
                                                       receipt_ref=f"R{n}", lines=lines))

            outcome, result = self.pos(t, huge_sale)
            self.log(f"{t.code} bad input: a sale of {sum(q * p for q, p in sizes)} Rial -> {outcome} "
                     f"{getattr(result, 'code', '')}")
            beyond = any(q * p > LINE_TOTAL_RIAL_MAX for q, p in sizes) or \
                sum(q * p for q, p in sizes) > SALE_AMOUNT_RIAL_MAX
            if outcome == "ok" and beyond:
                self.sim.auditor.violation("bad_input_refused", f"{t.code}: a sale past the money bounds was accepted")
            if outcome == "refused":
                self.unchanged_after_refusal(t, seq, "a sale past the money bounds")
            return
        balance = self.balance_of(t, member_id) or 0
        req = SaleRequest(idempotency_key=f"{t.code}-s{n}", card_number=number, receipt_ref=f"R{n}",
                          lines=self.lines(), redeem_points=max(0, balance) + self.rng.choice((10, 1000)))
        outcome, result = self.pos(t, lambda: post_sale(t.ledger, req))  # type: ignore[arg-type]
        self.log(f"{t.code} bad input: redeem {req.redeem_points} of {balance} -> {outcome} "
                 f"{getattr(result, 'code', '')}")
        if outcome == "ok":
            self.sim.auditor.violation("bad_input_refused", f"{t.code}: a sale redeeming more than the balance was "
                                       "accepted")
        if outcome == "refused":
            self.unchanged_after_refusal(t, seq, "redeeming too much")

    def not_stored(self, t: "TerminalNode", number: str) -> None:
        if number in self.model.bank_accepted:
            return  # taken earlier through a known defect: the number is there already
        hits = [h for h in scan_sqlite(t.path) if h[2] == number]
        if hits:
            self.sim.auditor.violation("no_payment_numbers_stored", f"{t.code}: a refused payment card number is "
                                       f"stored in {hits[0][0]}.{hits[0][1]}")

    # -- lifecycle ------------------------------------------------------------------------------------------

    def do_expiry(self, t: "TerminalNode") -> None:
        outcome, result = self.pos(t, lambda: expire_points(t.ledger, "scheduler"),  # type: ignore[arg-type]
                                   one_transaction=False)
        if outcome == "ok":
            expired = sorted((self.model.label(mid), pts) for mid, pts in result)
            self.log(f"{t.code} expiry run -> {sum(p for _, p in expired)} points of {len(expired)} members")
            for mid, _ in result:
                self.no_negative_by_local_op(t, mid, 0, "the expiry run")
        else:
            self.log(f"{t.code} expiry run -> {outcome}")

    def do_tier_review(self, t: "TerminalNode", scheduled: bool = False) -> None:
        outcome, result = self.pos(t, lambda: review_tiers(t.ledger, "scheduler"),  # type: ignore[arg-type]
                                   one_transaction=False)
        if outcome == "ok":
            changes = sorted(f"{self.model.label(mid)} {old}->{new}" for mid, old, new in result)
            self.log(f"{t.code} tier review{' (review day)' if scheduled else ''} -> {', '.join(changes) or 'no change'}")
        else:
            self.log(f"{t.code} tier review -> {outcome}")

    def scheduled_jobs(self) -> None:
        """What each terminal's scheduler runs when its clock says so: the tier review on
        a review day."""
        m = self.model
        for t in self.sim.terminals:
            if not t.up:
                continue
            at = t.clock.peek()
            day = local_date(at, t.ledger.ruleset.utc_offset_minutes)  # type: ignore[union-attr]
            if tier_review_due(t.ledger.ruleset, at, m.last_review.get(t.code)):  # type: ignore[union-attr]
                m.last_review[t.code] = day
                self.do_tier_review(t, scheduled=True)

    # -- sync -------------------------------------------------------------------------------------------------

    def do_sync(self, t: "TerminalNode") -> None:
        assert t.client is not None
        try:
            report = t.client.sync_once()
        except HubUnreachable as exc:
            self.log(f"{t.code} sync -> hub unreachable ({str(exc)[:60]})")
            return
        except HubRefused as exc:
            self.log(f"{t.code} sync -> refused {exc.status} {exc.problem}")
            self.sim.auditor.after_sync_refused(t, exc.problem or "", str(exc))
            return
        self.log(f"{t.code} sync -> sent {report.sent} received {report.received} in {report.requests} requests, "
                 f"backlog {report.backlog}")
        self.sim.auditor.after_sync_ok(t)

    # -- the world ----------------------------------------------------------------------------------------------

    def do_time(self) -> None:
        sim, r = self.sim, self.rng.random()
        if r < 0.5:
            delta = timedelta(seconds=self.rng.randint(5, 600))
        elif r < 0.78:
            delta = timedelta(hours=self.rng.randint(1, 12))
        elif r < 0.92:
            delta = timedelta(days=self.rng.randint(1, 9), minutes=self.rng.randint(0, 600))
        elif r < 0.97:
            delta = self.to_next_date()
        else:
            delta = timedelta(days=self.rng.randint(90, 400))
        sim.world.advance(delta)
        self.log(f"time: +{delta} -> {sim.world.now:%Y-%m-%d %H:%M} UTC "
                 f"({jdatetime.datetime.fromgregorian(datetime=sim.world.now + timedelta(minutes=210)):%Y-%m-%d})")
        self.scheduled_jobs()

    def to_next_date(self) -> timedelta:
        """To just before or after the next date that matters: a season's edge, Nowruz
        (the tier review), a member's birthday."""
        now = self.sim.world.now
        marks = [at for at, _ in jalali_boundaries(now) if at > now]
        for t in self.sim.terminals:
            if t.up:
                for (born,) in t.sql("SELECT birth_date FROM members WHERE birth_date IS NOT NULL ORDER BY name"):
                    b = date.fromisoformat(born)
                    for year in (now.year, now.year + 1):
                        try:
                            at = datetime(year, b.month, b.day, 6, tzinfo=timezone.utc)
                        except ValueError:
                            continue
                        if at > now:
                            marks.append(at)
                break
        target = min(marks) if marks else now + timedelta(days=30)
        return target - now + timedelta(minutes=self.rng.choice((-3, 2, 30)))

    def do_ntp(self) -> None:
        sim = self.sim
        on_hub = self.rng.random() < 0.2
        node = sim.hub if on_hub else self.rng.choice(sim.terminals)
        name = "hub" if on_hub else node.code  # type: ignore[union-attr]
        r = self.rng.random()
        if r < 0.35:
            node.clock.set_offset(timedelta(milliseconds=self.rng.randint(-2000, 2000)))
            self.log(f"ntp {name}: corrected to true time")
            return
        if r < 0.65:
            delta = timedelta(seconds=-self.rng.randint(1, 600))
        elif r < 0.85:
            delta = timedelta(seconds=self.rng.randint(1, 600))
        elif r < 0.95:
            delta = -timedelta(hours=self.rng.randint(1, 48))
        else:
            delta = timedelta(hours=self.rng.randint(1, 24))
        node.clock.step(delta)
        self.log(f"ntp {name}: clock steps {delta.total_seconds():+.0f}s (now off by "
                 f"{node.clock.offset.total_seconds():+.0f}s)")

    def do_net_faults(self) -> None:
        t = self.rng.choice(self.sim.terminals)
        t.link.fault_rate = self.rng.choice((0.0, 0.0, 0.15, 0.4, 0.7))
        self.log(f"net {t.code}: faults on {t.link.fault_rate:.0%} of requests")

    def do_partition(self) -> None:
        sim = self.sim
        if self.rng.random() < 0.15:
            until = sim.step + self.rng.randint(3, 25)
            for t in sim.terminals:
                t.link.partitioned_until = until
            self.log(f"net: every link cut until step {until}")
            return
        t = self.rng.choice(sim.terminals)
        if t.link.partitioned():
            t.link.partitioned_until = -1
            self.log(f"net {t.code}: partition heals")
            return
        t.link.partitioned_until = sim.step + self.rng.randint(3, 40)
        self.log(f"net {t.code}: partitioned until step {t.link.partitioned_until}")

    def do_crash_terminal(self, t: "TerminalNode") -> None:
        self.sim.crash_terminal(t)

    def do_crash_hub(self) -> None:
        hub = self.sim.hub
        if not hub.up:
            return
        hub.crash()
        hub.down_until = self.sim.step + self.rng.randint(0, 4)
        self.log(f"hub: dies; back at step {hub.down_until}")

    def do_backup(self, t: "TerminalNode") -> None:
        behind = t.clock.behind() > timedelta(0)
        try:
            info = backups.backup_now(t.path, t.backups, keep=BACKUPS_KEPT, at=t.clock())
        except LedgerError as exc:
            self.log(f"{t.code} backup -> failed {exc}")
            return
        except OSError as exc:
            self.log(f"{t.code} backup -> {type(exc).__name__}")
            self.sim.auditor.violation("unclean_error", f"{t.code}: backup_now raised {type(exc).__name__}: {exc}",
                                       "backup-rotation-clock-back" if behind else None)
            return
        self.log(f"{t.code} backup -> {info.entries} entries")
        self.sim.auditor.backups_private(t, BACKUPS_KEPT)

    def do_restore(self, t: "TerminalNode") -> None:
        """The terminal is stopped and its ledger put back from one of its backups."""
        m, sim = self.model, self.sim
        files = backups.list_backups(t.backups)
        if not files:
            self.do_backup(t)
            return
        chosen = self.rng.choice(files)
        sim.crash_terminal(t, quiet=True)
        backups.restore(chosen, t.path, at=t.clock())
        sim.start_terminal(t)
        t.restarts += 1
        m.restored[t.code] = sim.step
        present = {r[0] for r in t.sql("SELECT id FROM sales")}
        lost = [i for i, a in m.acked.items() if a.terminal == t.code and i not in present and i not in m.lost]
        for i in lost:
            m.lost[i] = sim.step
        members = {r[0] for r in t.sql("SELECT id FROM members")}
        enrolled = m.enrolled.get(t.code, {})
        for member_id in [i for i in enrolled if i not in members]:
            del enrolled[member_id]
        cards = dict(t.sql("SELECT number, status FROM cards"))
        statuses = m.card_status.get(t.code, {})
        for number in list(statuses):
            if number not in cards:
                del statuses[number]
            elif cards[number] != statuses[number][0]:
                statuses[number] = (cards[number], statuses[number][1])
        gifts = {r[0] for r in t.sql("SELECT number FROM gift_cards")}
        issued = m.gifts.get(t.code, {})
        for number in [n for n in issued if n not in gifts]:
            del issued[number]
        self.pending.pop(t.code, None)
        self.log(f"{t.code} restored from backup {files.index(chosen) + 1} of {len(files)}: "
                 f"{self.seq_of(t) - 1} entries; {len(lost)} acknowledged sales and refunds gone with it")
        if self.rng.random() < 0.5:  # the daemon syncs as it starts, before the till sells anything
            self.do_sync(t)

    def do_publish(self) -> None:
        hub = self.sim.hub
        if not hub.up:
            return
        text = self.table_text
        if self.rng.random() < 0.85:
            text = re.sub(r"signup_points = \d+", f"signup_points = {self.rng.choice((0, 50, 100, 150, 250))}", text)
            text = re.sub(r"(\[earn\]\nrial_per_point = )\d+",
                          lambda mm: mm.group(1) + str(self.rng.choice((5000, 8000, 10000, 20000))), text)
            text = re.sub(r"birthday_points = \d+", f"birthday_points = {self.rng.choice((100, 200, 500))}", text)
        assert hub.hub is not None
        version, hash_ = hub.hub.publish_ruleset(text, "sim")
        self.table_text = text
        self.model.published = hash_
        self.log(f"hub: loyalty table version {version} published ({hash_[:12]})")


DIRECTORY_MARGIN = timedelta(seconds=5)  # sync.client.DIRECTORY_MARGIN: the directory watermark's slack
