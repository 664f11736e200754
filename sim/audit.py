"""The auditor: a model of what the simulated world was told and did, and the
invariants checked against the real files after every step and at the end.

A violation names its invariant; where it is one of the known defects (sim.defects)
it says so, and if that defect is allowed the run records it, sets aside what it
spoils (a member the hub never heard of, a terminal the hub refuses for ever...) and
goes on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from ledger.errors import LedgerError
from ledger.sales import post_sale, refund
from ledger.types import RefundRequest, SaleRequest
from ledger.verify import verify
from sim.scan import scan_engine, scan_sqlite
from sync.hub import schema as H
from sync.protocol import STATUS_RANK

if TYPE_CHECKING:
    from sim.core import Simulation
    from sim.nodes import TerminalNode

FULL_AUDIT_EVERY = 20  # steps between full checks of every file (the touched one is checked every step)
DIRECTORY_MARGIN = timedelta(seconds=5)  # sync.client.DIRECTORY_MARGIN
LEGIT_REFUSALS = ("stale",)  # the hub may refuse a terminal whose clock is off by more than SKEW_MAX_S


class Violation(Exception):
    def __init__(self, invariant: str, message: str, step: int, defect: str | None = None) -> None:
        super().__init__(f"{invariant}: {message}")
        self.invariant = invariant
        self.message = message
        self.step = step
        self.defect = defect


@dataclass
class Acked:
    """A sale or refund the POS was told is committed, with the answer it was given."""

    kind: str
    terminal: str
    key: str
    request: Any
    answer: dict[str, Any]
    step: int


@dataclass
class Model:
    labels: dict[str, str] = field(default_factory=dict)  # member id -> M<n>
    acked: dict[str, Acked] = field(default_factory=dict)  # sale or refund id -> what the POS was told
    by_key: dict[tuple[str, str], str] = field(default_factory=dict)  # (terminal, key) -> acked id
    lost: dict[str, int] = field(default_factory=dict)  # acked ids lost with a restore -> step
    enrolled: dict[str, dict[str, bool]] = field(default_factory=dict)  # terminal -> member id -> clock behind
    card_status: dict[str, dict[str, tuple[str, bool]]] = field(default_factory=dict)  # terminal -> number -> (status, behind)
    gifts: dict[str, dict[str, bool]] = field(default_factory=dict)  # terminal -> gift number -> clock behind
    used_numbers: dict[str, str] = field(default_factory=dict)  # every card number handed out -> kind
    mobiles: list[tuple[str, str]] = field(default_factory=list)  # (mobile, store) enrolled
    published: str | None = None
    backups: dict[str, list[str]] = field(default_factory=dict)
    restored: dict[str, int] = field(default_factory=dict)
    stuck: dict[str, str] = field(default_factory=dict)  # terminal -> defect (refused by the hub for ever)
    ruleset_forgotten: dict[str, str] = field(default_factory=dict)
    tainted_members: dict[str, str] = field(default_factory=dict)
    tainted_cards: dict[str, str] = field(default_factory=dict)
    tainted_gifts: dict[str, str] = field(default_factory=dict)
    bank_accepted: dict[str, str] = field(default_factory=dict)  # payment numbers stored by a known defect
    known_seen: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # defect -> (step, invariant, message)
    last_review: dict[str, Any] = field(default_factory=dict)

    def label(self, member_id: str | None) -> str:
        return self.labels.get(member_id or "", "?")


def chunks(items: list[Any], size: int = 500) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class Auditor:
    def __init__(self, sim: "Simulation", allow: tuple[str, ...]) -> None:
        self.sim = sim
        self.allow = allow
        self.model = Model()

    # -- reporting ------------------------------------------------------------------------

    def violation(self, invariant: str, message: str, defect: str | None = None) -> bool:
        """Raise Violation, unless `defect` is a known one the run allows: then record it
        and return True (the caller sets aside what it spoils)."""
        message = message.replace(str(self.sim.folder), "<run>")  # the same words on every replay
        if defect is not None and defect in self.allow:
            if defect not in self.model.known_seen:
                self.model.known_seen[defect] = (self.sim.step, invariant, message)
            self.sim.log(f"known defect {defect} (allowed): {invariant}: {message}")
            return True
        raise Violation(invariant, message, self.sim.step, defect)

    # -- after every step -------------------------------------------------------------------

    def after_step(self, touched: "TerminalNode | None") -> None:
        sim = self.sim
        for t in sim.terminals:
            if t.up:
                self.quick_sums(t)
        if touched is not None and touched.up:
            self.verify_terminal(touched)
        if sim.step % FULL_AUDIT_EVERY == 0:
            for t in sim.terminals:
                if t.up:
                    self.verify_terminal(t)
                    self.acked_kept(t)
            if sim.hub.up:
                self.hub_sums()

    def quick_sums(self, t: "TerminalNode") -> None:
        """Balances and gift balances against their entries, in two aggregate queries."""
        # what other terminals did (points elsewhere) and what was archived are sums, not entries
        (bal, ent), = t.sql("SELECT (SELECT coalesce(sum(points - elsewhere - archived_credit + archived_debit), 0) "
                            "FROM balances), "
                            "(SELECT coalesce(sum(points), 0) FROM entries WHERE member_id IN "
                            "(SELECT member_id FROM balances))")
        (gbal, gent), = t.sql("SELECT (SELECT coalesce(sum(balance - elsewhere - archived), 0) FROM gift_cards), "
                              "(SELECT coalesce(sum(amount), 0) FROM entries WHERE gift_card_number IN "
                              "(SELECT number FROM gift_cards))")
        if bal != ent or gbal != gent:
            report = verify(t.ledger.engine)  # type: ignore[union-attr]
            detail = report.problems[0] if report.problems else f"balances {bal} vs entries {ent}"
            self.violation("balance_equals_entries", f"{t.code}: {self._name_members(detail)}")

    def _name_members(self, text: str) -> str:
        for member_id, label in self.model.labels.items():
            if member_id in text:
                text = text.replace(member_id, f"{label}({member_id[:8]})")
        return text

    def verify_terminal(self, t: "TerminalNode") -> None:
        report = verify(t.ledger.engine)  # type: ignore[union-attr]
        for problem in report.problems:
            member = next((m for m in self.model.labels if m in problem), None)
            if member is not None and member in self.model.tainted_members:
                continue
            if member is not None and "has entries but no balance row" in problem:
                defect = self.directory_loss_defect(member)
                if defect and self.violation("directory_reaches_hub", f"{t.code}: {self._name_members(problem)}",
                                             defect):
                    self.model.tainted_members[member] = defect
                    continue
            self.violation("ledger_verify", f"{t.code}: {self._name_members(problem)}")

    def directory_loss_defect(self, member_id: str) -> str | None:
        """The known defect that explains a member missing from the hub, if one does:
        the member was enrolled while its terminal's clock read behind an earlier reading."""
        for rows in self.model.enrolled.values():
            if rows.get(member_id):
                return "clock-back-directory-loss"
        return None

    def hub_sums(self) -> None:
        with self.sim.hub.engine.connect() as conn:
            sums = dict(conn.execute(select(H.entries.c.member_id, func.sum(H.entries.c.points))
                                     .where(H.entries.c.member_id.is_not(None))
                                     .group_by(H.entries.c.member_id)).all())
            bals = dict(conn.execute(select(H.balances.c.member_id, H.balances.c.points)).all())
            twice = conn.execute(select(H.entries.c.terminal_code, H.entries.c.seq, func.count())
                                 .group_by(H.entries.c.terminal_code, H.entries.c.seq)
                                 .having(func.count() > 1)).first()
        if twice is not None:
            self.violation("hub_entry_once", f"the hub holds seq {twice[1]} of {twice[0]} {twice[2]} times")
        for member_id in sorted(set(sums) | set(bals)):
            if int(sums.get(member_id) or 0) != int(bals.get(member_id) or 0):
                self.violation("hub_balance_equals_entries",
                               f"member {self.model.label(member_id)}: hub balance {bals.get(member_id)} but its "
                               f"entries add up to {sums.get(member_id)}")

    def hub_chains(self) -> None:
        """Each terminal's chain at the hub: seqs 1, 2, 3... each entry hashing to its
        hash and pointing at the one before."""
        from ledger.chain import GENESIS_HASH, entry_hash

        fields = [c for c in H.entries.c if c.name != "ingest_id"]
        with self.sim.hub.engine.connect() as conn:
            rows = conn.execute(select(*fields).order_by(H.entries.c.terminal_code, H.entries.c.seq)).all()
        current, prev, seq = None, GENESIS_HASH, 0
        for r in rows:
            e = dict(r._mapping)
            if e["terminal_code"] != current:
                current, prev, seq = e["terminal_code"], GENESIS_HASH, 0
            seq += 1
            if e["seq"] != seq or e["prev_hash"] != prev or entry_hash(e) != e["hash"]:
                self.violation("hub_chain", f"the hub's chain of {current} breaks at seq {e['seq']}")
                return
            prev = e["hash"]

    def acked_kept(self, t: "TerminalNode") -> None:
        """Every sale and refund the POS was told about is still there, with the same answer."""
        m = self.model
        ids = [i for i, a in m.acked.items() if a.terminal == t.code and i not in m.lost]
        for part in chunks(ids):
            rows = dict(t.sql(f"SELECT id, result_json FROM sales WHERE id IN ({','.join('?' * len(part))})",
                              tuple(part)))
            for i in part:
                a = m.acked[i]
                if i not in rows:
                    self.violation("acked_sale_kept", f"{t.code}: the {a.kind} {a.key} acknowledged at step "
                                   f"{a.step} is gone")
                elif json.loads(rows[i]) != a.answer:
                    self.violation("acked_sale_kept", f"{t.code}: the {a.kind} {a.key} acknowledged at step "
                                   f"{a.step} now reads {rows[i][:200]}, not {json.dumps(a.answer)[:200]}")

    # -- after a sync -----------------------------------------------------------------------------

    def hub_latest_ruleset(self) -> str | None:
        with self.sim.hub.engine.connect() as conn:
            return conn.execute(select(H.rulesets.c.hash).order_by(H.rulesets.c.version.desc()).limit(1)).scalar()

    def after_sync_ok(self, t: "TerminalNode") -> None:
        if not self.sim.hub.up:
            return
        self.directory_at_hub(t)
        self.ruleset_taken(t)
        self.own_entries_back(t)

    def own_entries_back(self, t: "TerminalNode") -> None:
        """After a sync that went through, the terminal holds every entry of its own the
        hub holds (one restored from an older backup takes them back, even with nothing
        new to send)."""
        if t.code in self.model.stuck or not t.up:
            return
        with self.sim.hub.engine.connect() as conn:
            hub_last = conn.execute(select(func.max(H.entries.c.seq))
                                    .where(H.entries.c.terminal_code == t.code)).scalar()
        (next_seq,), = t.sql("SELECT next_seq FROM terminals WHERE code = ?", (t.code,))
        if hub_last is not None and int(hub_last) > int(next_seq) - 1:
            self.violation("own_entries_back", f"{t.code} synced, but the hub holds its entries up to seq {hub_last} "
                           f"and it holds {int(next_seq) - 1}")

    def backups_private(self, t: "TerminalNode", keep: int) -> None:
        """After a backup: only finished backups in the folder (no .partial, -wal or -shm
        left), no more than `keep`, each readable by the agent's user alone (0600)."""
        files = sorted(p for p in t.backups.iterdir()) if t.backups.is_dir() else []
        finished = [p for p in files if p.name.startswith("ledger-") and p.name.endswith(".sqlite3")]
        stray = [p.name for p in files if p not in finished]
        if stray:
            self.violation("backups_tidy", f"{t.code}: the backup folder holds {', '.join(stray)}")
        if len(finished) > keep:
            self.violation("backups_tidy", f"{t.code}: {len(finished)} backups kept, not {keep}")
        for p in finished:
            mode = p.stat().st_mode & 0o777
            if mode != 0o600:
                self.violation("backups_private", f"{t.code}: backup {p.name} has mode {mode:04o}, not 0600")

    def directory_at_hub(self, t: "TerminalNode") -> None:
        """What this terminal enrolled, issued, blocked or replaced before a sync that
        succeeded is at the hub after it."""
        m = self.model
        members = {i: behind for i, behind in m.enrolled.get(t.code, {}).items() if i not in m.tainted_members}
        cards = {n: v for n, v in m.card_status.get(t.code, {}).items() if n not in m.tainted_cards}
        with self.sim.hub.engine.connect() as conn:
            at_hub: set[str] = set()
            for part in chunks(list(members)):
                at_hub |= set(conn.execute(select(H.members.c.id).where(H.members.c.id.in_(part))).scalars())
            hub_cards: dict[str, str] = {}
            for part in chunks(list(cards)):
                hub_cards.update(conn.execute(select(H.cards.c.number, H.cards.c.status)
                                              .where(H.cards.c.number.in_(part))).all())
        for member_id, behind in members.items():
            if member_id not in at_hub:
                defect = "clock-back-directory-loss" if behind else None
                if self.violation("directory_reaches_hub", f"{t.code} synced, but member {m.label(member_id)} "
                                  f"it enrolled is not at the hub", defect):
                    m.tainted_members[member_id] = "clock-back-directory-loss"
        gifts = {n: b for n, b in m.gifts.get(t.code, {}).items() if n not in m.tainted_gifts}
        with self.sim.hub.engine.connect() as conn:
            hub_gifts: set[str] = set()
            for part in chunks(list(gifts)):
                hub_gifts |= set(conn.execute(select(H.gift_cards.c.number)
                                              .where(H.gift_cards.c.number.in_(part))).scalars())
        for number, behind in gifts.items():
            if number not in hub_gifts:
                defect = "clock-back-directory-loss" if behind else None
                if self.violation("directory_reaches_hub", f"{t.code} synced, but gift card …{number[-4:]} it "
                                  "issued is not at the hub", defect):
                    m.tainted_gifts[number] = "clock-back-directory-loss"
        for number, (status, behind) in cards.items():
            hub_status = hub_cards.get(number)
            if hub_status is None or STATUS_RANK.get(hub_status, 0) < STATUS_RANK.get(status, 0):
                defect = "clock-back-directory-loss" if behind else None
                if self.violation("directory_reaches_hub", f"{t.code} synced, but card …{number[-4:]} it set "
                                  f"{status} is {hub_status or 'missing'} at the hub", defect):
                    m.tainted_cards[number] = "clock-back-directory-loss"

    def ruleset_taken(self, t: "TerminalNode") -> None:
        m = self.model
        latest = self.hub_latest_ruleset()
        if latest is None:
            return
        assert t.ledger is not None
        if t.ledger.ruleset.hash == latest:
            m.ruleset_forgotten.pop(t.code, None)
            return
        if t.code in m.ruleset_forgotten:
            return
        (held,), = t.sql("SELECT ruleset_hash FROM sync_state WHERE id = 1")
        defect = "ruleset-forgotten-on-restart" if held == latest and t.restarts else None
        if self.violation("ruleset_converges", f"{t.code} synced but sells on table {t.ledger.ruleset.hash[:12]}, "
                          f"not the hub's {latest[:12]} (its sync_state holds {str(held)[:12]})", defect):
            m.ruleset_forgotten[t.code] = "ruleset-forgotten-on-restart"

    def after_sync_refused(self, t: "TerminalNode", code: str, message: str) -> None:
        m = self.model
        if t.code in m.stuck:
            return
        if not code and t.link.last_fault == "cut_answer":
            return  # the refusal's own body was cut: the terminal cannot read why, and tries again later
        if code in LEGIT_REFUSALS:
            skew = abs((t.clock.peek() - self.sim.hub.clock.peek()).total_seconds())
            if skew > 290:  # SKEW_MAX_S, less a margin for the time a request takes
                return
            self.violation("sync_refused", f"{t.code}: refused as {code} with clocks only {skew:.0f}s apart: "
                           f"{message}")
            return
        defect = "restore-sequence-gap" if code in ("sequence_gap", "entry_conflict") and t.code in m.restored \
            else None
        if self.violation("sync_refused", f"{t.code}: the hub refused its batch ({code}): {message[:200]}", defect):
            m.stuck[t.code] = defect  # type: ignore[assignment]

    # -- at the end, after healing and quiescence ---------------------------------------------------

    def final(self) -> None:
        sim, m = self.sim, self.model
        for t in sim.terminals:
            self.verify_terminal(t)
            self.acked_kept(t)
        self.hub_sums()
        self.hub_chains()
        with sim.hub.engine.connect() as conn:
            hub_entries = {r.id: r for r in conn.execute(select(
                H.entries.c.id, H.entries.c.terminal_code, H.entries.c.hash, H.entries.c.sale_id,
                H.entries.c.gift_card_number, H.entries.c.amount, H.entries.c.kind))}
            hub_bal = dict(conn.execute(select(H.balances.c.member_id, H.balances.c.points)).all())
            hub_members = set(conn.execute(select(H.members.c.id)).scalars())
            hub_cards = {r.number: (r.member_id, r.status) for r in conn.execute(
                select(H.cards.c.number, H.cards.c.member_id, H.cards.c.status))}
            hub_gifts = set(conn.execute(select(H.gift_cards.c.number)).scalars())
        latest = self.hub_latest_ruleset()
        gift_sums: dict[str, int] = {}
        for e in hub_entries.values():
            if e.gift_card_number and e.kind in ("gift_load", "gift_spend"):
                gift_sums[e.gift_card_number] = gift_sums.get(e.gift_card_number, 0) + int(e.amount)
        for t in sim.terminals:
            if t.code in m.stuck:
                continue
            self._converged(t, hub_entries, hub_bal, hub_members, hub_cards, hub_gifts, gift_sums, latest)
        self._acked_at_hub(hub_entries)
        self._sales_at_hub()
        self._replays()
        self._scan()
        self._probe_negative_members()

    def _converged(self, t: "TerminalNode", hub_entries: dict[str, Any], hub_bal: dict[str, int],
                   hub_members: set[str], hub_cards: dict[str, tuple[str, str]], hub_gifts: set[str],
                   gift_sums: dict[str, int], latest: str | None) -> None:
        m = self.model
        local = dict(t.sql("SELECT id, hash FROM entries"))
        own = {r[0] for r in t.sql("SELECT id FROM entries WHERE terminal_code = ?", (t.code,))}
        hub_own = {i for i, e in hub_entries.items() if e.terminal_code == t.code}
        problem = ""
        if own - hub_own:
            problem = f"{t.code}: {len(own - hub_own)} of its entries never reached the hub"
        elif hub_own - own:
            problem = f"{t.code}: the hub holds {len(hub_own - own)} entries of it that it does not"
        if problem:
            defect = "restore-sequence-gap" if t.code in m.restored else None
            if self.violation("entries_reach_hub", problem, defect):
                m.stuck[t.code] = "restore-sequence-gap"
                return
        for i in own & hub_own:
            if local[i] != hub_entries[i].hash:
                self.violation("entries_reach_hub", f"{t.code}: entry {i} has another hash at the hub")
        # a chain's terminal holds its own entries only; what the others did comes as sums
        if set(local) != own:
            self.violation("entries_converge", f"{t.code}: holds {len(set(local) - own)} entries of other terminals")
        members = {r[0]: int(r[1]) for r in t.sql(
            "SELECT m.id, coalesce(b.points, 0) FROM members m LEFT JOIN balances b ON b.member_id = m.id")}
        scope = self.hub_scope(t.store)
        for member_id in sorted((hub_members & scope) | set(members)):
            if member_id in m.tainted_members:
                continue
            if member_id not in members:
                if self.enrolled_at_store(member_id, t.store):  # a member of its store must be here
                    self.violation("directory_converges", f"{t.code}: member {m.label(member_id)} of its store is "
                                   "at the hub but not here")
            elif member_id not in hub_members:
                defect = self.directory_loss_defect(member_id)
                if self.violation("directory_converges", f"{t.code}: member {m.label(member_id)} never reached "
                                  "the hub", defect):
                    m.tainted_members[member_id] = defect  # type: ignore[assignment]
            elif members[member_id] != int(hub_bal.get(member_id, 0)):
                self.violation("balances_converge", f"{t.code}: member {m.label(member_id)} has {members[member_id]} "
                               f"points here and {hub_bal.get(member_id, 0)} at the hub")
        cards = {r[0]: (r[1], r[2]) for r in t.sql("SELECT number, member_id, status FROM cards")}
        blocked = dict(t.sql("SELECT number, status FROM blocklist"))
        for number in sorted(set(hub_cards) | set(cards)):
            if number in m.tainted_cards or (cards.get(number) or hub_cards.get(number))[0] in m.tainted_members:
                continue
            if number not in cards and hub_cards[number][0] not in members:  # a member this till does not hold
                status = hub_cards[number][1]
                if status != "active" and blocked.get(number) != status:
                    self.violation("blocklist_complete", f"{t.code}: card …{number[-4:]} is {status} at the hub "
                                   f"but {blocked.get(number, 'not on the blocklist')} here")
                continue
            if cards.get(number) != hub_cards.get(number):
                mine, theirs = cards.get(number, ("", "missing"))[1], hub_cards.get(number, ("", "missing"))[1]
                same_rank = mine != theirs and STATUS_RANK.get(mine, -1) == STATUS_RANK.get(theirs, -2)
                if same_rank and self.violation("cards_converge", f"{t.code}: card …{number[-4:]} is {mine} here "
                                                f"and {theirs} at the hub", "card-status-diverges"):
                    m.tainted_cards[number] = "card-status-diverges"
                    continue
                self.violation("cards_converge", f"{t.code}: card …{number[-4:]} is {cards.get(number, ('', 'missing'))[1]} "
                               f"here and {hub_cards.get(number, ('', 'missing'))[1]} at the hub")
        gifts = dict(t.sql("SELECT number, balance FROM gift_cards"))
        for number in sorted(hub_gifts | set(gifts)):
            if number in m.tainted_gifts:
                continue
            if number not in gifts or number not in hub_gifts:
                behind = any(g.get(number) for g in m.gifts.values())
                if number not in hub_gifts and behind and self.violation(
                        "directory_converges", f"{t.code}: gift card …{number[-4:]} never reached the hub",
                        "clock-back-directory-loss"):
                    m.tainted_gifts[number] = "clock-back-directory-loss"
                    continue
                self.violation("gift_cards_converge", f"{t.code}: gift card …{number[-4:]} is "
                               f"{'missing here' if number not in gifts else 'not at the hub'}")
            elif int(gifts[number]) != gift_sums.get(number, 0):
                self.violation("gift_cards_converge", f"{t.code}: gift card …{number[-4:]} holds {gifts[number]} "
                               f"here; the hub's entries add up to {gift_sums.get(number, 0)}")
        if latest is not None and t.code not in m.ruleset_forgotten:
            self.ruleset_taken(t)

    def hub_scope(self, store: str) -> set[str]:
        with self.sim.hub.engine.connect() as conn:
            return set(conn.execute(select(H.member_stores.c.member_id)
                                    .where(H.member_stores.c.store == store)).scalars())

    def enrolled_at_store(self, member_id: str, store: str) -> bool:
        with self.sim.hub.engine.connect() as conn:
            return conn.execute(select(H.members.c.store_code).where(H.members.c.id == member_id)).scalar() == store

    def _sales_at_hub(self) -> None:
        """Every sale and refund the POS was told about reached the hub once, with its lines."""
        m = self.model
        with self.sim.hub.engine.connect() as conn:
            held = dict(conn.execute(select(H.sales.c.id, H.sales.c.amount)).all())
        for i, a in m.acked.items():
            if i in m.lost or a.terminal in m.stuck:
                continue
            if i not in held:
                self.violation("sales_reach_hub", f"{a.kind} {a.key} (step {a.step}) of {a.terminal} is not at "
                               "the hub")

    def _acked_at_hub(self, hub_entries: dict[str, Any]) -> None:
        """Each acknowledged sale's entries are at the hub, each exactly once (ids are unique
        there), with the terminal's hashes."""
        m = self.model
        by_sale: dict[str, dict[str, str]] = {}
        for i, e in hub_entries.items():
            if e.sale_id:
                by_sale.setdefault(e.sale_id, {})[i] = e.hash
        for t in self.sim.terminals:
            if t.code in m.stuck:
                continue
            ids = [i for i, a in m.acked.items() if a.terminal == t.code and i not in m.lost]
            local: dict[str, dict[str, str]] = {}
            for part in chunks(ids):
                for sale_id, entry_id, hash_ in t.sql(
                        f"SELECT sale_id, id, hash FROM entries WHERE sale_id IN ({','.join('?' * len(part))})",
                        tuple(part)):
                    local.setdefault(sale_id, {})[entry_id] = hash_
            for i in ids:
                if local.get(i, {}) != by_sale.get(i, {}):
                    a = m.acked[i]
                    self.violation("acked_sale_at_hub", f"{t.code}: the entries of {a.kind} {a.key} (step {a.step}) "
                                   f"differ at the hub: {len(local.get(i, {}))} here, {len(by_sale.get(i, {}))} there")

    def _replays(self) -> None:
        """The same key and body, sent again now, gets the first answer."""
        m = self.model
        for i, a in m.acked.items():
            if i in m.lost:
                continue
            t = self.sim.terminal(a.terminal)
            assert t.ledger is not None
            try:
                if isinstance(a.request, SaleRequest):
                    again = post_sale(t.ledger, a.request).to_json()
                else:
                    again = refund(t.ledger, a.request).to_json()
            except LedgerError as exc:
                self.violation("idempotent_replay", f"{t.code}: replaying {a.kind} {a.key} was refused: {exc}")
                continue
            if again != a.answer:
                self.violation("idempotent_replay", f"{t.code}: replaying {a.kind} {a.key} answered "
                               f"{json.dumps(again)[:160]} instead of {json.dumps(a.answer)[:160]}")

    def _scan(self) -> None:
        m = self.model
        found = []
        for t in self.sim.terminals:
            for path in sorted(t.folder.rglob("*")):
                if path.is_file() and not path.name.endswith(("-wal", "-shm")) and path.name.startswith("ledger"):
                    found += [(str(path.relative_to(self.sim.folder)), *hit) for hit in scan_sqlite(path)]
        found += [("hub", *hit) for hit in scan_engine(self.sim.hub.engine)]
        for where, table, column, number in found:
            if number in m.bank_accepted:
                continue
            self.violation("no_payment_numbers_stored", f"a payment card number ({number[:6]}…{number[-4:]}) is "
                           f"stored in {where}: {table}.{column}")

    def _probe_negative_members(self) -> None:
        """Members left below zero (two branches spent the same points): each may still
        buy, earning, as long as the sale redeems nothing."""
        sim = self.sim
        for t in sim.terminals:
            if t.code in self.model.stuck:
                continue
            rows = t.sql("SELECT c.number, b.points FROM cards c JOIN balances b ON b.member_id = c.member_id "
                         "WHERE b.points < 0 AND c.status = 'active' ORDER BY c.number")
            for number, points in rows[:3]:
                if t.up:
                    sim.workload.probe_sale(t, number, int(points))
