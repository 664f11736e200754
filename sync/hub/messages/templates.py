"""Message templates in Persian and English, with placeholders like `{name}`. Pure.

Each template has a kind (what it may be used for) and a text per locale. The
placeholders a kind allows are listed in PLACEHOLDERS; a template naming any other
is refused when loaded, with the template and the placeholder named (a typo never
reaches a member as a literal `{balnce}`). The file format (TOML):

    [receipt]               # a built-in kind: replaces the built-in text
    fa = "..."
    en = "..."

    [nowruz-1404]           # any other name: a template for campaigns (or offers)
    kind = "campaign"
    fa = "..."
"""

from __future__ import annotations

import functools
import re
import string
import tomllib
from dataclasses import dataclass
from datetime import date
from typing import Any

from sync.hub.messages.errors import TemplateError
from sync.hub.messages.text import MISSING, Style

KINDS = ("code", "welcome", "receipt", "tier", "birthday", "expiry", "offer", "gift_load", "gift_spend", "campaign")
MARKETING = frozenset({"birthday", "expiry", "offer", "campaign"})  # these carry the opt-out footer
LOCALES = ("fa", "en")
_COMMON = frozenset({"name", "store", "date"})
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "code": frozenset({"code", "minutes", "store"}),
    "welcome": _COMMON | {"balance", "tier"},
    "receipt": _COMMON | {"amount", "earned", "redeemed", "points", "balance", "tier"},
    "tier": _COMMON | {"tier", "old_tier", "balance"},
    "birthday": _COMMON | {"balance", "tier"},
    "expiry": _COMMON | {"points", "expiry_date", "days", "balance"},
    "offer": _COMMON | {"offer", "points", "balance"},
    "gift_load": frozenset({"store", "date", "amount", "gift_balance", "card"}),
    "gift_spend": frozenset({"store", "date", "amount", "gift_balance", "card"}),
    "campaign": _COMMON | {"balance", "tier"},
}
# how a value is written: money in Rial or Toman, counts with separators, dates in the calendar
_MONEY = frozenset({"amount", "gift_balance"})
_NUMBERS = frozenset({"earned", "redeemed", "points", "balance", "minutes", "days"})
_DAYS = frozenset({"date", "expiry_date"})
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
TEXT_CHARS_MAX = 1000

BUILT_IN: dict[str, dict[str, str]] = {
    "code": {"fa": "کد تایید شما: {code}\nاین کد {minutes} دقیقه اعتبار دارد.",
             "en": "Your verification code: {code}\nIt is valid for {minutes} minutes."},
    "welcome": {"fa": "{name} عزیز، به باشگاه مشتریان {store} خوش آمدید.\nامتیاز شما: {balance}",
                "en": "Dear {name}, welcome to the {store} customer club.\nYour points: {balance}"},
    # one SMS part for a usual name and amount (70 Persian characters): {redeemed} and {tier} are there to add
    "receipt": {"fa": "{name} عزیز، خرید {amount}\nامتیاز: +{earned}، مانده: {balance}",
                "en": "Dear {name}, purchase {amount}: +{earned} points, balance {balance}"},
    "tier": {"fa": "{name} عزیز، سطح عضویت شما از {old_tier} به {tier} تغییر کرد.\nمانده: {balance} امتیاز",
             "en": "Dear {name}, your membership moved from {old_tier} to {tier}.\nBalance: {balance} points"},
    "birthday": {"fa": "{name} عزیز، تولدتان مبارک! با آرزوی بهترین‌ها از {store}",
                 "en": "Happy birthday, {name}! Best wishes from {store}"},
    "expiry": {"fa": "{name} عزیز، {points} امتیاز شما تا {expiry_date} منقضی می‌شود.\nمانده: {balance} امتیاز",
               "en": "Dear {name}, {points} of your points expire by {expiry_date}.\nBalance: {balance} points"},
    "offer": {"fa": "{name} عزیز، با پیشنهاد {offer} {points} امتیاز گرفتید.\nمانده: {balance} امتیاز",
              "en": "Dear {name}, the offer {offer} gave you {points} points.\nBalance: {balance} points"},
    "gift_load": {"fa": "کارت هدیه {card}: {amount} شارژ شد.\nمانده: {gift_balance}\n{store}",
                  "en": "Gift card {card}: {amount} loaded.\nBalance: {gift_balance}\n{store}"},
    "gift_spend": {"fa": "کارت هدیه {card}: خرید {amount}\nمانده: {gift_balance}\n{store}",
                   "en": "Gift card {card}: {amount} spent.\nBalance: {gift_balance}\n{store}"},
    "campaign": {"fa": "{name} عزیز، پیشنهادهای تازه {store} در انتظار شماست.",
                 "en": "Dear {name}, new offers await you at {store}."},
}


@dataclass(frozen=True)
class Template:
    name: str
    kind: str
    texts: dict[str, str]  # locale -> text (at least one)

    def text(self, locale: str) -> str:
        return self.texts.get(locale) or next(iter(self.texts.values()))

    def render(self, locale: str, values: dict[str, Any], style: Style, footer: str = "") -> str:
        """The message: every placeholder written in `style`; a value the hub does not
        know shows as MISSING. `footer` (the opt-out line) follows marketing kinds."""
        text = self.text(locale).format_map({k: _written(k, values.get(k), style)
                                             for k in PLACEHOLDERS[self.kind]})
        if footer and self.kind in MARKETING:
            text = f"{text}\n{footer}"
        return text


def _written(key: str, value: Any, style: Style) -> str:
    if value is None:
        return MISSING
    if key in _MONEY:
        return style.money(int(value))
    if key in _NUMBERS:
        return style.number(int(value))
    if key in _DAYS and isinstance(value, date):
        return style.day(value)
    return str(value)


def placeholders(text: str, where: str) -> list[str]:
    """The placeholder names in `text`; TemplateError for anything but plain `{name}`."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"{where}: {exc} (write a literal brace as {{{{ or }}}})") from None
    names = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier():
            raise TemplateError(f"{where}: placeholder {{{field}}} is not a name (write {{name}}, {{balance}}...)")
        if spec or conversion:
            raise TemplateError(f"{where}: placeholder {{{field}}} takes no format or conversion; values are "
                                "written by the hub's settings (locale, calendar, currency)")
        names.append(field)
    return names


def check_template(name: str, kind: str, texts: dict[str, str], source: str) -> Template:
    where = f"{source}: template {name!r}"
    if not NAME_RE.match(name):
        raise TemplateError(f"{where}: a name is lower-case letters, digits, '.', '_' or '-' (at most 64)")
    if kind not in KINDS:
        raise TemplateError(f"{where}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    if not texts:
        raise TemplateError(f"{where}: give its text in fa, en or both")
    allowed = PLACEHOLDERS[kind]
    for locale, text in texts.items():
        if not isinstance(text, str) or not text.strip() or len(text) > TEXT_CHARS_MAX:
            raise TemplateError(f"{where} ({locale}): the text is 1 to {TEXT_CHARS_MAX} characters")
        for field in placeholders(text, f"{where} ({locale})"):
            if field not in allowed:
                raise TemplateError(f"{where} ({locale}): unknown placeholder {{{field}}}; a {kind} template may use "
                                    + ", ".join(f"{{{p}}}" for p in sorted(allowed)))
    return Template(name, kind, dict(texts))


class Templates:
    """Every template by name: the built-in ones, replaced or added to by a file."""

    def __init__(self, by_name: dict[str, Template]) -> None:
        self.by_name = by_name

    def get(self, name: str) -> Template:
        try:
            return self.by_name[name]
        except KeyError:
            raise TemplateError(f"no template {name!r} (the templates file adds them; built in: "
                                f"{', '.join(KINDS)})") from None

    def of_kind(self, kind: str) -> list[str]:
        return sorted(n for n, t in self.by_name.items() if t.kind == kind)


@functools.cache
def built_in() -> Templates:
    """(Checked once; never mutated: a file's templates go into a new Templates.)"""
    return Templates({kind: check_template(kind, kind, texts, "<built-in>") for kind, texts in BUILT_IN.items()})


def parse_templates(text: str, source: str) -> Templates:
    """The built-in templates with the file's on top; TemplateError naming `source`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{source}: is not valid TOML: {exc}") from None
    out = dict(built_in().by_name)
    for name, table in data.items():
        if not isinstance(table, dict):
            raise TemplateError(f"{source}: template {name!r} must be a table ([{name}] with fa = ..., en = ...)")
        unknown = set(table) - {"kind", *LOCALES}
        if unknown:
            raise TemplateError(f"{source}: template {name!r}: unknown key {sorted(unknown)[0]!r} (kind, fa, en)")
        kind = table.get("kind", name if name in KINDS else "campaign")
        if name in KINDS and kind != name:
            raise TemplateError(f"{source}: template {name!r} is the built-in {name} template; its kind is {name}")
        out[name] = check_template(name, str(kind), {k: table[k] for k in LOCALES if k in table}, source)
    return Templates(out)
