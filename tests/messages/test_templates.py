"""Templates are checked when loaded (an unknown placeholder names the template and
the placeholder) and render numbers, money and dates as the settings say."""

from __future__ import annotations

from datetime import date

import pytest

from sync.hub.messages.errors import TemplateError
from sync.hub.messages.templates import BUILT_IN, PLACEHOLDERS, built_in, parse_templates
from sync.hub.messages.text import Style, is_birthday


def test_an_unknown_placeholder_names_the_template_and_the_placeholder() -> None:
    with pytest.raises(TemplateError) as err:
        parse_templates('[receipt]\nfa = "{name} مانده: {balnce}"\n', "templates.toml")
    text = str(err.value)
    assert "templates.toml" in text and "'receipt'" in text and "{balnce}" in text and "{balance}" in text


@pytest.mark.parametrize("body, why", [
    ('[receipt]\nen = "{balance:,}"\n', "takes no format"),
    ('[receipt]\nen = "{balance!r}"\n', "takes no format"),
    ('[receipt]\nen = "{0}"\n', "not a name"),
    ('[receipt]\nen = "{}"\n', "not a name"),
    ('[receipt]\nen = "unclosed {balance"\n', "literal brace"),
    ('[receipt]\nkind = "tier"\nen = "x"\n', "its kind is receipt"),
    ('[spring]\nkind = "nope"\nen = "x"\n', "unknown kind"),
    ('[spring]\nkind = "campaign"\n', "fa, en or both"),
    ('[spring]\nkind = "campaign"\nde = "x"\n', "unknown key 'de'"),
    ('["Spring!"]\nen = "x"\n', "lower-case"),
    ('[spring]\nen = "{code}"\n', "unknown placeholder {code}"),  # a campaign has no code
    ("not toml [", "not valid TOML"),
])
def test_bad_templates_are_refused_with_the_reason(body: str, why: str) -> None:
    with pytest.raises(TemplateError, match=why.replace("{", r"\{").replace("}", r"\}")):
        parse_templates(body, "t.toml")


def test_a_file_adds_campaigns_and_replaces_built_in_texts() -> None:
    t = parse_templates('[nowruz]\nfa = "{name} عزیز، نوروز مبارک"\n[welcome]\nen = "Hi {name}"\n', "t.toml")
    assert t.get("nowruz").kind == "campaign" and t.get("welcome").texts == {"en": "Hi {name}"}
    assert t.get("welcome").text("fa") == "Hi {name}"  # a missing locale falls back to the other
    assert t.of_kind("campaign") == ["campaign", "nowruz"]
    with pytest.raises(TemplateError, match="no template 'nope'"):
        t.get("nope")


def test_every_built_in_template_uses_only_its_placeholders_in_both_languages() -> None:
    t = built_in()
    assert set(t.by_name) == set(BUILT_IN) == set(PLACEHOLDERS)
    assert all(set(x.texts) == {"fa", "en"} for x in t.by_name.values())


def test_values_are_written_in_the_members_language_money_and_calendar() -> None:
    receipt = built_in().get("receipt")
    values = {"name": "سارا", "amount": 1_250_000, "earned": 1250, "balance": 12_500}
    fa = receipt.render("fa", values, Style("fa", "jalali", "toman", True))
    assert "۱۲۵٬۰۰۰ تومان" in fa and "+۱٬۲۵۰" in fa and "۱۲٬۵۰۰" in fa
    en = receipt.render("en", values, Style("en", "gregorian", "rial", True))
    assert "1,250,000 Rial" in en and "+1,250" in en
    expiry = built_in().get("expiry")
    jalali = expiry.render("fa", {"name": "x", "points": 10, "expiry_date": date(2026, 3, 21)},
                           Style("fa", "jalali", "toman", True), footer="لغو۱۱")
    assert "۱۴۰۵/۰۱/۰۱" in jalali and jalali.endswith("\nلغو۱۱")  # Nowruz; marketing kinds carry the footer
    latin = expiry.render("fa", {"name": "x", "points": 10, "expiry_date": date(2026, 3, 21)},
                          Style("fa", "gregorian", "toman", False))
    assert "2026-03-21" in latin
    assert "لغو" not in receipt.render("fa", values, Style(), footer="لغو۱۱")  # a receipt is no marketing
    assert "—" in receipt.render("en", {"name": "x"}, Style("en"))  # an unknown value shows as a dash


def test_birthdays_in_both_calendars() -> None:
    born = date(1990, 3, 21)  # 1 Farvardin 1369
    assert is_birthday(born, date(2026, 3, 21), "gregorian") and is_birthday(born, date(2026, 3, 21), "jalali")
    assert is_birthday(date(1990, 3, 21), date(2025, 3, 21), "jalali")  # 1 Farvardin 1404 is 21 March 2025
    assert not is_birthday(born, date(2026, 3, 20), "jalali")
    assert is_birthday(date(2000, 2, 29), date(2026, 2, 28), "gregorian")  # not a leap year: the 28th
    assert not is_birthday(date(2000, 2, 29), date(2028, 2, 28), "gregorian")
    # born 30 Esfand 1399 (a leap year: 20 March 2021); 1404 has 29 days in Esfand: greeted on the 29th
    assert is_birthday(date(2021, 3, 20), date(2026, 3, 20), "jalali")
