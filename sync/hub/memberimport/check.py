"""Rows of the members workbook to the members they make, and every problem found,
row by row and then across the file (the same mobile or card twice, a referrer that
is nobody). Pure: what the hub holds comes in as plain sets and mappings.

A problem never stops the checking: the person gets every bad row at once, in the
error workbook, and fixes the file in one go.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ledger.cardpolicy import CardPolicy
from sync.hub.memberimport import cells
from sync.hub.memberimport.cells import CellProblem
from sync.hub.memberimport.columns import LABELS, Columns

# The fields in the order they are checked (and problems of one row are listed).
FIELDS = ("name", "mobile", "birth_date", "card", "tier", "opening_balance", "referrer", "store")


@dataclass(frozen=True)
class Problem:
    row: int  # the workbook's row number, as Excel shows it (the header is row 1)
    column: str  # the column's header as the file writes it
    value: str  # the cell as written (a card number masked)
    code: str
    en: str
    fa: str


@dataclass(slots=True)
class NewMember:
    row: int
    id: str
    name: str
    mobile: str
    birth_date: str | None
    card: str | None
    tier: str
    points: int
    referrer: str | None  # the referrer's mobile, as written
    store: str
    referrer_id: str | None = None


@dataclass(frozen=True)
class Context:
    """What rows are checked against, read from the hub once."""

    today: date
    policy: CardPolicy
    tiers: Mapping[str, str]  # folded id or name -> tier id
    default_tier: str
    stores: frozenset[str]
    default_store: str | None


Reader = tuple[str, int | None, Callable[[Any], Any]]  # a field, its column, its cell parser


@dataclass
class Plan:
    """The members the file makes, and every problem found so far."""

    members: list[NewMember] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows: int = 0  # data rows read (empty rows not counted)
    by_mobile: dict[str, int] = field(default_factory=dict)  # mobile -> first row
    by_card: dict[str, int] = field(default_factory=dict)  # card -> first row
    readers: tuple[Reader, ...] | None = None  # the file's cell parsers, made at its first row

    @property
    def cards(self) -> int:
        return sum(m.card is not None for m in self.members)

    @property
    def points(self) -> int:
        return sum(m.points for m in self.members)

    def by_store(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self.members:
            out[m.store] = out.get(m.store, 0) + 1
        return out


def _header(columns: Columns, name: str) -> str:
    return columns.header.get(name) or LABELS[name][0]


def readers(columns: Columns, ctx: Context) -> tuple[Reader, ...]:
    """(field, its column or None, the cell's parser) for each field, made once per file."""
    def referrer(raw: Any) -> str | None:
        return None if cells.text_of(raw) is None else cells.mobile(raw, "referrer's mobile")

    parsers: dict[str, Callable[[Any], Any]] = {
        "name": cells.name, "mobile": cells.mobile,
        "birth_date": lambda raw: cells.birth_date(raw, ctx.today),
        "card": lambda raw: cells.card(raw, ctx.policy),
        "tier": lambda raw: cells.tier(raw, ctx.tiers, ctx.default_tier),
        "opening_balance": cells.points, "referrer": referrer,
        "store": lambda raw: cells.store(raw, ctx.default_store, ctx.stores)}
    return tuple((name, columns.index.get(name), parsers[name]) for name in FIELDS)


def check_row(plan: Plan, number: int, values: tuple[Any, ...], columns: Columns, ctx: Context) -> None:
    """Check one data row and add its member (if it is whole) or its problems to the plan."""
    if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
        return  # an empty row (Excel keeps some below the data)
    if plan.readers is None:
        plan.readers = readers(columns, ctx)
    plan.rows += 1
    found: dict[str, Any] = {}
    bad = False
    width = len(values)
    for name, i, parse in plan.readers:
        raw = values[i] if i is not None and i < width else None
        try:
            found[name] = parse(raw)
        except CellProblem as p:
            bad = True
            plan.problems.append(Problem(number, _header(columns, name), cells.shown(name, raw), p.code, p.en, p.fa))
    mobile, card = found.get("mobile"), found.get("card")
    if mobile is not None:
        first = plan.by_mobile.setdefault(mobile, number)
        if first != number:
            bad = True
            plan.problems.append(Problem(number, _header(columns, "mobile"), mobile, "duplicate_mobile",
                                         f"the mobile {mobile} is also on row {first}: one member per mobile",
                                         f"موبایل {mobile} در ردیف {first} هم آمده است: هر موبایل یک عضو"))
    if card is not None:
        first = plan.by_card.setdefault(card, number)
        if first != number:
            bad = True
            plan.problems.append(Problem(number, _header(columns, "card"), cells.shown("card", card), "duplicate_card",
                                         f"this card is also on row {first}", f"این کارت در ردیف {first} هم آمده است"))
    if mobile is not None and found.get("referrer") == mobile:
        bad = True
        plan.problems.append(Problem(number, _header(columns, "referrer"), mobile, "self_referrer",
                                     "a member cannot be their own referrer", "عضو نمی‌تواند معرف خودش باشد"))
    if bad:
        return
    plan.members.append(NewMember(number, str(uuid.uuid4()), found["name"], found["mobile"], found["birth_date"],
                                  found["card"], found["tier"], found["opening_balance"], found["referrer"],
                                  found["store"]))


def referrers_outside(plan: Plan) -> set[str]:
    """The referrers' mobiles that no row of the file enrols: the hub must hold them."""
    return {m.referrer for m in plan.members if m.referrer is not None and m.referrer not in plan.by_mobile}


def against_hub(plan: Plan, columns: Columns, held_mobiles: Iterable[str], held_cards: Iterable[str],
                hub_referrers: Mapping[str, list[str]]) -> None:
    """Problems with what the hub already holds: a mobile or card it has (a re-run of
    the same file is all duplicates), a referrer it does not know or knows twice; and
    each referrer's member id. held_*: those of the file's the hub holds;
    hub_referrers: referrer mobile -> the ids of the hub's members with it."""
    held_mobiles, held_cards = set(held_mobiles), set(held_cards)
    ids = {m.mobile: m.id for m in plan.members}
    # a row whose referrer row is bad is refused too, so the file cannot half-apply
    file_rows = plan.by_mobile
    kept = []
    for m in plan.members:
        bad = False
        if m.mobile in held_mobiles:
            bad = True
            plan.problems.append(Problem(m.row, _header(columns, "mobile"), m.mobile, "member_exists",
                                         f"the hub already has a member with the mobile {m.mobile}",
                                         f"عضوی با موبایل {m.mobile} در مرکز وجود دارد"))
        if m.card is not None and m.card in held_cards:
            bad = True
            shown = cells.shown("card", m.card)
            plan.problems.append(Problem(m.row, _header(columns, "card"), shown, "card_exists",
                                         f"card {shown} is already issued at the hub",
                                         f"کارت {shown} پیش‌تر در مرکز صادر شده است"))
        if m.referrer is not None:
            if m.referrer in file_rows:
                m.referrer_id = ids.get(m.referrer)
                if m.referrer_id is None:
                    bad = True
                    plan.problems.append(Problem(m.row, _header(columns, "referrer"), m.referrer, "bad_referrer_row",
                                                 f"the referrer is row {file_rows[m.referrer]}, which has problems",
                                                 f"معرف ردیف {file_rows[m.referrer]} است که خود ایراد دارد"))
            else:
                found = hub_referrers.get(m.referrer, [])
                if len(found) == 1:
                    m.referrer_id = found[0]
                else:
                    bad = True
                    if found:
                        plan.problems.append(Problem(
                            m.row, _header(columns, "referrer"), m.referrer, "shared_referrer",
                            f"the referrer's mobile {m.referrer} belongs to {len(found)} members at the hub "
                            "(loyalty-hub reconcile)", f"موبایل معرف {m.referrer} به چند عضو در مرکز تعلق دارد"))
                    else:
                        plan.problems.append(Problem(
                            m.row, _header(columns, "referrer"), m.referrer, "unknown_referrer",
                            f"no member has the mobile {m.referrer}, in the file or at the hub",
                            f"عضوی با موبایل {m.referrer} نه در فایل هست نه در مرکز"))
        if not bad:
            kept.append(m)
    plan.members = kept
    plan.problems.sort(key=lambda p: (p.row, FIELDS.index(_field_of(columns, p.column))))


def _field_of(columns: Columns, header: str) -> str:
    for name in FIELDS:
        if _header(columns, name) == header:
            return name
    return FIELDS[0]
