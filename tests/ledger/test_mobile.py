from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidMobile
from ledger.mobile import normalise_mobile


@pytest.mark.parametrize(
    "raw",
    ["09123456789", "0912 345 6789", "0912-345-6789", "+98 912 345 6789", "00989123456789",
     "989123456789", "9123456789", "۰۹۱۲۳۴۵۶۷۸۹", "٠٩١٢٣٤٥٦٧٨٩", "(0912) 345 6789"],
)
def test_accepted_forms_normalise_to_one(raw: str) -> None:
    assert normalise_mobile(raw) == "09123456789"


@pytest.mark.parametrize(
    "raw", ["", "0912345678", "091234567890", "02188776655", "+1 555 123 4567", "0912abc6789", "0812 345 6789"]
)
def test_malformed_mobile_is_refused_with_the_expected_form(raw: str) -> None:
    with pytest.raises(InvalidMobile, match="expected 11 digits starting 09"):
        normalise_mobile(raw)


@given(st.text(max_size=30))
def test_any_text_is_a_mobile_or_invalid_mobile(raw: str) -> None:
    try:
        out = normalise_mobile(raw)
    except InvalidMobile:
        return
    assert len(out) == 11 and out.startswith("09") and out.isdigit() and out.isascii()
