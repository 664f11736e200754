"""Sales and refunds: the till's two writes. Each is one transaction, keyed by the
POS's idempotency key (invariant 4): the same key and body give the first result
again; the same key with another body is refused.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, func, insert, select, update

from ledger.archive import archived_refusal, archived_sale
from ledger.chain import request_hash
from ledger.db import Raw
from ledger import limits
from ledger.errors import (
    IdempotencyConflict,
    InsufficientPoints,
    IntegrityFailure,
    RefundElsewhere,
    RefundExceedsSale,
    SaleArchived,
    UnknownSale,
    ValidationFailed,
)
from ledger.planning import Plan, build_snapshot, plan_sale
from ledger.rules import point_value_at
from ledger.schema import entries, members, sale_lines, sales
from ledger.snapshots import snapshot_and_lifetime
from ledger.timefmt import format_utc
from ledger.types import (
    RefundRequest,
    RefundResult,
    SaleRequest,
    SaleResult,
    basket_total,
    require_int,
    require_text,
)
from ledger.writer import NewEntry, append_entries, queue_for_hub

if TYPE_CHECKING:
    from ledger.service import Ledger

REVERSE_EARN = "reverse-earn"
RETURN_REDEEM = "return-redeem"
SETTLED_IN_CASH = "spent-points-deducted"  # points 0, amount: the Rial kept from a refund


# an archived sale's key is kept (ledger.archive) with no result: refused, never posted twice
_REPLAY_SQL = ("SELECT kind, request_hash, result_json, created_at FROM sales WHERE idempotency_key = ? "
               "UNION ALL SELECT kind, request_hash, NULL, created_at FROM archived_sales WHERE idempotency_key = ?")
# a sale's member with their points: one statement (the snapshot would read the balance again)
_MEMBER_BALANCE_SQL = ("SELECT m.id, m.tier, m.segment, m.birth_date, m.referrer_id, b.points FROM members m "
                       "JOIN balances b ON b.member_id = m.id WHERE m.id = ?")
_BALANCE_SQL = "SELECT points FROM balances WHERE member_id = ?"
_SALE_COLUMNS = ("id", "idempotency_key", "request_hash", "kind", "terminal_code", "member_id", "card_number",
                 "receipt_ref", "amount", "ruleset_hash", "created_at", "actor", "result_json")
_INSERT_SALE_SQL = (f"INSERT INTO sales ({', '.join(_SALE_COLUMNS)}) "
                    f"VALUES ({', '.join('?' for _ in _SALE_COLUMNS)})")
_INSERT_LINE_SQL = ("INSERT INTO sale_lines (sale_id, line_no, sku, name, category, quantity, unit_price) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)")


class MemberRow(NamedTuple):
    """What a sale needs of the member, read with plain SQL on the till's hot path."""

    id: str
    tier: str
    segment: str | None
    birth_date: date | None
    referrer_id: str | None


def _replay(conn: Connection, key: str, kind: str, body_hash: str) -> dict[str, Any] | None:
    row = Raw(conn).one_or_none(_REPLAY_SQL, (key, key))
    if row is None:
        return None
    stored_kind, stored_hash, stored_result, stored_at = row
    if stored_kind != kind or stored_hash != body_hash:
        raise IdempotencyConflict(
            f"idempotency key {key!r} was already used for a different {stored_kind}; "
            "send a new key for a new request"
        )
    if stored_result is None:
        raise SaleArchived(f"idempotency key {key!r} is of a {stored_kind} of {stored_at[:10]} that was posted then "
                           "and is archived past the retention; it is not posted again (head office holds it)")
    return dict(json.loads(stored_result))


def sale_result(ledger: "Ledger", sale_id: str) -> SaleResult:
    """A committed sale's answer as it was given at the till (for a reprint or a slip)."""
    require_text("sale id", sale_id, maximum=36)
    with ledger.read() as conn:
        row = Raw(conn).one_or_none("SELECT result_json FROM sales WHERE id = ? AND kind = 'sale'", (sale_id,))
        archived = archived_sale(Raw(conn), sale_id=sale_id) if row is None else None
    if archived is not None:
        raise SaleArchived(f"sale {archived[0]} of {archived[1][:10]} is past the retention and archived at this "
                           "till: head office holds it")
    if row is None:
        raise UnknownSale(f"no sale with id {sale_id}")
    return SaleResult.from_json(dict(json.loads(row[0])), replayed=True)


def quote(ledger: "Ledger", card_or_mobile: str, lines: tuple[Any, ...], redeem_points: int = 0) -> Plan:
    """What a basket would earn and may redeem, from the same rules as a sale; writes nothing."""
    basket_total(lines)
    at = ledger.clock()
    with ledger.read() as conn:
        member_id = ledger._resolve_member_id(conn, card_or_mobile)
        member = conn.execute(select(members).where(members.c.id == member_id)).one()
        snapshot = build_snapshot(conn, member, at, ledger.ruleset)
        return plan_sale(ledger.ruleset, snapshot, lines, redeem_points, at)


def post_sale(ledger: "Ledger", req: SaleRequest) -> SaleResult:
    body_hash = request_hash(req.body())
    at = ledger.clock()
    with ledger.write("posting a sale") as conn:
        replayed = _replay(conn, req.idempotency_key, "sale", body_hash)
        if replayed is not None:
            return SaleResult.from_json(replayed, replayed=True)
        card = ledger._usable_card(conn, req.card_number)
        row = Raw(conn).one_or_none(_MEMBER_BALANCE_SQL, (card.member_id,))
        if row is None:  # no balance row: as the snapshot's own read would, refuse
            raise IntegrityFailure(f"member {card.member_id} has no balance row")
        mid, tier_now, segment, born, referrer, points_now = row
        member = MemberRow(mid, tier_now, segment, date.fromisoformat(born) if born else None, referrer)
        snapshot, lifetime = snapshot_and_lifetime(conn, member, at, ledger.ruleset, int(points_now))
        limits.check("the member's purchases over their life", lifetime + req.amount,
                     limits.MEMBER_SPEND_RIAL_MAX, "Rial")
        # a sale that redeems nothing always goes through, whatever the balance (a debt
        # from a refund or from two offline branches is paid by what it earns: invariant 13)
        if req.redeem_points and req.redeem_points > snapshot.balance:
            raise InsufficientPoints(
                f"the member has {snapshot.balance} points; cannot redeem {req.redeem_points}"
            )
        plan = plan_sale(ledger.ruleset, snapshot, req.lines, req.redeem_points, at)
        if plan.redeem_problem:
            raise ValidationFailed(plan.redeem_problem)
        sale_id = str(uuid.uuid4())
        new: list[NewEntry] = []
        for award in plan.awards:
            if award.points > 0 and award.kind in ("earn", "bonus", "offer"):
                new.append(NewEntry(kind="earn" if award.kind == "earn" else "bonus", points=award.points,
                                    amount=req.amount if award.kind == "earn" else 0, member_id=member.id,
                                    card_number=card.number, sale_id=sale_id, receipt_ref=req.receipt_ref,
                                    rule_id=award.rule_id))
        if plan.redeem_points:
            new.append(NewEntry(kind="redeem", points=-plan.redeem_points, amount=plan.redeem_rial,
                                member_id=member.id, card_number=card.number, sale_id=sale_id,
                                receipt_ref=req.receipt_ref, rule_id="redeem"))
        tier = member.tier
        if plan.new_tier and plan.new_tier != member.tier:
            new.append(NewEntry(kind="tier", points=0, amount=0, member_id=member.id, sale_id=sale_id,
                                receipt_ref=req.receipt_ref, reason=f"{member.tier} -> {plan.new_tier}"))
            conn.execute(update(members).where(members.c.id == member.id).values(tier=plan.new_tier))
            tier = plan.new_tier
        if plan.referrer_points > 0 and member.referrer_id:
            new.append(NewEntry(kind="bonus", points=plan.referrer_points, amount=0,
                                member_id=member.referrer_id, sale_id=sale_id, receipt_ref=req.receipt_ref,
                                rule_id=plan.referrer_rule_id, reason="referral"))
        append_entries(conn, ledger.terminal, new, actor=req.actor, ruleset_hash=plan.ruleset_hash, at=at)
        # the balance read by the snapshot in this transaction, moved by exactly these entries
        balance = snapshot.balance + sum(e.points for e in new if e.member_id == member.id)
        at_text = format_utc(at)
        result = SaleResult(
            sale_id=sale_id,
            member_id=member.id,
            receipt_ref=req.receipt_ref,
            amount=req.amount,
            earned_points=plan.earned_points,
            redeemed_points=plan.redeem_points,
            redeemed_rial=plan.redeem_rial,
            balance=balance,
            tier=tier,
            awards=plan.awards,
            created_at=at_text,
            discount_rial=plan.discount_rial,
            debt_points=max(0, -balance),
        )
        raw = Raw(conn)
        raw.run(_INSERT_SALE_SQL, (
            sale_id, req.idempotency_key, body_hash, "sale", ledger.terminal, member.id, card.number,
            req.receipt_ref, req.amount, plan.ruleset_hash, at_text, req.actor,
            json.dumps(result.to_json(), ensure_ascii=False)))
        raw.many(_INSERT_LINE_SQL, [
            (sale_id, no, line.sku, line.name, line.category, line.quantity, line.unit_price)
            for no, line in enumerate(req.lines, start=1)
        ])
        queue_for_hub(conn, "sale", sale_id, at)  # up to the hub, after its entries
        return result


def _refund_lines(conn: Connection, sale_id: str, req: RefundRequest) -> list[dict[str, Any]]:
    """The lines this refund returns, checked against what is left of the sale."""
    sold = {r.line_no: r for r in conn.execute(select(sale_lines).where(sale_lines.c.sale_id == sale_id))}
    refunded: dict[int, int] = dict(conn.execute(
        select(sale_lines.c.original_line_no, func.sum(sale_lines.c.quantity))
        .join(sales, sales.c.id == sale_lines.c.sale_id)
        .where(sales.c.original_sale_id == sale_id)
        .group_by(sale_lines.c.original_line_no)
    ).all())
    wanted: list[tuple[int, int]]
    if req.lines is None:
        wanted = [(no, row.quantity - refunded.get(no, 0)) for no, row in sorted(sold.items())]
        wanted = [(no, q) for no, q in wanted if q > 0]
        if not wanted:
            raise RefundExceedsSale(f"sale {sale_id} is already fully refunded")
    else:
        if not req.lines:
            raise ValidationFailed("a refund needs at least one line, or none named to refund the rest")
        seen: dict[int, int] = {}
        for line in req.lines:
            require_int("refund line_no", line.line_no, minimum=1)
            require_int("refund quantity", line.quantity, minimum=1)
            seen[line.line_no] = seen.get(line.line_no, 0) + line.quantity
        wanted = sorted(seen.items())
        for no, quantity in wanted:
            if no not in sold:
                raise ValidationFailed(f"sale {sale_id} has no line {no}")
            left = sold[no].quantity - refunded.get(no, 0)
            if quantity > left:
                raise RefundExceedsSale(
                    f"line {no} of sale {sale_id}: {quantity} to refund but only {left} left unrefunded"
                )
    return [
        {"original_line_no": no, "quantity": q, "sku": sold[no].sku, "name": sold[no].name,
         "category": sold[no].category, "unit_price": sold[no].unit_price}
        for no, q in wanted
    ]


def _points_of(conn: Connection, sale_ids: list[str], kinds: tuple[str, ...], rule_id: str | None,
               member_id: str) -> int:
    if not sale_ids:
        return 0
    query = select(func.coalesce(func.sum(entries.c.points), 0)).where(
        entries.c.sale_id.in_(sale_ids), entries.c.kind.in_(kinds), entries.c.member_id == member_id
    )
    if rule_id is not None:
        query = query.where(entries.c.rule_id == rule_id)
    return int(conn.execute(query).scalar_one())


def refund(ledger: "Ledger", req: RefundRequest) -> RefundResult:
    """Refund a sale fully or partly: earned points are reversed and redeemed points
    returned in proportion to the Rial refunded; the last refund settles the remainder
    exactly, so a full refund restores the balance to the point."""
    require_text("idempotency key", req.idempotency_key, maximum=128)
    require_text("sale id", req.sale_id, maximum=36)
    body_hash = request_hash(req.body())
    at = ledger.clock()
    with ledger.write("refunding a sale") as conn:
        replayed = _replay(conn, req.idempotency_key, "refund", body_hash)
        if replayed is not None:
            replayed.pop("cash_refund_rial", None)
            return RefundResult(**replayed, replayed=True)
        sale = conn.execute(select(sales).where(sales.c.id == req.sale_id, sales.c.kind == "sale")).one_or_none()
        if sale is None:
            archived = archived_sale(Raw(conn), sale_id=req.sale_id)
            if archived is not None:
                raise SaleArchived(archived_refusal(*archived))
            raise UnknownSale(f"no sale with id {req.sale_id} at this till; a sale is refunded at the till "
                              "that made it")
        if sale.terminal_code != ledger.terminal:
            # this ledger was opened as another terminal since: its entries would chain
            # under a terminal the sale never knew
            raise RefundElsewhere(f"sale {sale.receipt_ref} was made on terminal {sale.terminal_code}, and this "
                                  f"till now runs as terminal {ledger.terminal}: refund it on "
                                  f"{sale.terminal_code}")
        lines = _refund_lines(conn, sale.id, req)
        amount = sum(x["quantity"] * x["unit_price"] for x in lines)
        prior = conn.execute(select(sales.c.id, sales.c.amount, sales.c.result_json)
                             .where(sales.c.original_sale_id == sale.id)).all()
        prior_ids = [r.id for r in prior]
        refunded_after = sum(int(r.amount) for r in prior) + amount
        earned = _points_of(conn, [sale.id], ("earn", "bonus"), None, sale.member_id)
        redeemed = -_points_of(conn, [sale.id], ("redeem",), None, sale.member_id)
        # points settled in cash by earlier refunds count as taken back
        reversed_before = -_points_of(conn, prior_ids, ("reverse",), REVERSE_EARN, sale.member_id) + \
            sum(int(json.loads(r.result_json).get("settled_points", 0)) for r in prior)
        returned_before = _points_of(conn, prior_ids, ("reverse",), RETURN_REDEEM, sale.member_id)
        whole = refunded_after >= sale.amount
        target_reversed = earned if whole else earned * refunded_after // sale.amount
        target_returned = redeemed if whole else redeemed * refunded_after // sale.amount
        to_reverse = target_reversed - reversed_before
        to_return = target_returned - returned_before
        balance_now = int(Raw(conn).scalar(_BALANCE_SQL, (sale.member_id,)))
        # earned points the member already spent: the balance (with the redeemed points
        # this refund gives back) does not hold them
        spent = max(0, to_reverse - max(0, balance_now + to_return))
        settled = deducted = 0
        if spent and ledger.ruleset.refunds.spent_points == "deduct":
            value = point_value_at(ledger.ruleset, at)
            settled = min(spent, amount // value)  # what the cash refunded can pay for; the rest is a debt
            deducted = settled * value
        taken = to_reverse - settled
        refund_id = str(uuid.uuid4())
        new = []
        if taken:
            new.append(NewEntry(kind="reverse", points=-taken, amount=amount, member_id=sale.member_id,
                                card_number=sale.card_number, sale_id=refund_id, receipt_ref=sale.receipt_ref,
                                rule_id=REVERSE_EARN, reason=f"refund of sale {sale.id}"))
        if settled:
            new.append(NewEntry(kind="reverse", points=0, amount=deducted, member_id=sale.member_id,
                                card_number=sale.card_number, sale_id=refund_id, receipt_ref=sale.receipt_ref,
                                rule_id=SETTLED_IN_CASH,
                                reason=f"{settled} spent points of sale {sale.id} kept from the cash refund"))
        if to_return:
            new.append(NewEntry(kind="reverse", points=to_return, amount=0, member_id=sale.member_id,
                                card_number=sale.card_number, sale_id=refund_id, receipt_ref=sale.receipt_ref,
                                rule_id=RETURN_REDEEM, reason=f"refund of sale {sale.id}"))
        append_entries(conn, ledger.terminal, new, actor=req.actor, ruleset_hash=sale.ruleset_hash, at=at)
        balance = int(Raw(conn).scalar(_BALANCE_SQL, (sale.member_id,)))
        result = RefundResult(
            refund_id=refund_id, sale_id=sale.id, member_id=sale.member_id, amount=amount,
            reversed_points=taken, returned_points=to_return, balance=balance, created_at=format_utc(at),
            settled_points=settled, deducted_rial=deducted, debt_points=max(0, -balance),
        )
        conn.execute(insert(sales).values(
            id=refund_id, idempotency_key=req.idempotency_key, request_hash=body_hash, kind="refund",
            original_sale_id=sale.id, terminal_code=ledger.terminal, member_id=sale.member_id,
            card_number=sale.card_number, receipt_ref=sale.receipt_ref, amount=amount,
            ruleset_hash=sale.ruleset_hash, created_at=at, actor=req.actor,
            result_json=json.dumps(result.to_json(), ensure_ascii=False),
        ))
        conn.execute(insert(sale_lines), [
            {"sale_id": refund_id, "line_no": i, **line} for i, line in enumerate(lines, start=1)
        ])
        queue_for_hub(conn, "sale", refund_id, at)
        return result


