"""The catalogue and the Persian display helpers, without a screen."""

from __future__ import annotations

import string
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import errors as le
from terminal_agent import i18n
from terminal_agent.tui.texts import TEXTS, error_text


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_word_is_in_both_languages_with_the_same_placeholders() -> None:
    for key, words in TEXTS.items():
        assert set(words) == {"fa", "en"} and all(words.values()), key
        assert _fields(words["fa"]) == _fields(words["en"]), key


def test_every_ledger_refusal_has_words_in_both_languages() -> None:
    codes = {cls.code for cls in vars(le).values() if isinstance(cls, type) and issubclass(cls, le.LedgerError)}
    codes -= {"ledger_error", "integrity_failure", "backup_error"}  # never an answer to the console
    codes |= {"bad_session", "bad_token", "forbidden", "missing_token", "no_pin_key", "no_printer", "offline_redeem_cap",
              "session_required", "too_many_attempts", "too_many_sessions", "printer_busy", "printer_timeout",
              "printer_unavailable", "body_too_large", "internal_error", "no_such_endpoint", "unknown_user",
              "duplicate_user", "unreachable"}  # the API's own and the console's
    assert {c for c in codes if f"err.{c}" not in TEXTS} == set()
    assert error_text("something_new", "detail", "fa") == "سامانه نپذیرفت (something_new)."
    assert error_text("card_blocked", "card …0202 was blocked", "en").endswith("(card …0202 was blocked)")


def test_a_line_is_joined_and_right_to_left_for_a_terminal_without_bidi() -> None:
    shown = i18n.visual("مانده امتیاز: ۷۴۰")
    assert shown == "۷۴۰ :ﺯﺎﯿﺘﻣﺍ ﻩﺪﻧﺎﻣ"  # read from the right: the word first, joined; the number last
    assert "مانده" not in shown
    assert i18n.visual("Balance: 740", rtl=False) == "Balance: 740"
    assert "\u200c" not in i18n.visual("کارت‌ها")  # the joiner did its work in the shapes


def test_jalali_dates_with_slashes_stay_in_one_piece() -> None:
    assert "۱۳۷۰/۰۵/۱۰" in i18n.visual("تولد ۱۳۷۰/۰۵/۱۰")


def test_days_in_the_calendar_the_field_asks_for() -> None:
    assert i18n.parse_day("1370-05-10", "fa") == date(1991, 8, 1)
    assert i18n.parse_day("۱۳۷۰/۰۵/۱۰", "fa") == date(1991, 8, 1)
    assert i18n.parse_day("1370-12-31", "fa") is None and i18n.parse_day("1991-02-30", "en") is None
    assert i18n.parse_day("1991-08-01", "en") == date(1991, 8, 1)
    assert i18n.day(date(1991, 8, 1), "fa") == "۱۳۷۰/۰۵/۱۰" and i18n.day(date(1991, 8, 1), "en") == "1991-08-01"
    assert i18n.day(date(1991, 8, 1), "fa", persian_digits=False) == "1370/05/10"


def test_digits_follow_the_setting_both_ways() -> None:
    assert i18n.digits("سقف ۵۰۰", "fa", persian_digits=False) == "سقف 500"
    assert i18n.rial(1_200_000, "fa") == "۱٬۲۰۰٬۰۰۰ ریال"
    assert i18n.parse_whole("۱٬۲۰۰٬۰۰۰") == 1_200_000 and i18n.parse_whole("-200") == -200
    assert i18n.parse_whole("1.5") is None


@given(st.text(alphabet="ابپتثجچحخدذرزسشکگلمنوهی ۰۱۲abc-:", max_size=40))
def test_the_cursor_map_is_a_permutation(text: str) -> None:
    shown, where = i18n.visual_map(text, rtl=True)
    assert len(shown) == len(text) and sorted(where) == list(range(len(text)))


@given(st.text(alphabet="ab ابپ", max_size=60), st.integers(min_value=1, max_value=20))
def test_wrapping_keeps_every_word_and_fits(text: str, width: int) -> None:
    lines = i18n.wrap(text, width)
    assert all(len(x) <= width for x in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


@pytest.mark.parametrize("mode", i18n.BIDI_MODES)
def test_the_bidi_modes_are_the_configs(mode: str) -> None:
    from terminal_agent.config import ConsoleSection

    assert ConsoleSection(bidi=mode).bidi == mode  # type: ignore[arg-type]
