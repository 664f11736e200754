"""SMS part counting: GSM-7 160/153, UCS-2 70/67, extension characters and
surrogate pairs never split; properties checked with hypothesis."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from sync.hub.messages.parts import GSM7_BASIC, GSM7_EXTENSION, sms_parts

gsm_text = st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC)), max_size=700)
gsm_any = st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION)), max_size=700)
_letters = list("ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهی")
persian = st.builds(str.__add__, st.sampled_from(_letters),  # at least one letter outside GSM-7
                    st.text(alphabet=st.sampled_from(_letters + list(" ۰۱۲۳۴۵۶۷۸۹،.")), max_size=700))
bmp = st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",))
anything = st.text(alphabet=st.one_of(bmp, st.characters(min_codepoint=0x10000)), max_size=400)


def test_the_boundaries() -> None:
    assert sms_parts("a" * 160).parts == 1 and sms_parts("a" * 161).parts == 2
    assert sms_parts("a" * 306).parts == 2 and sms_parts("a" * 307).parts == 3
    assert sms_parts("س" * 70).parts == 1 and sms_parts("س" * 71).parts == 2
    assert sms_parts("س" * 134).parts == 2 and sms_parts("س" * 135).parts == 3
    assert sms_parts("").parts == 1
    one_persian = sms_parts("a" * 60 + "ب")  # a single Persian letter sends all as UCS-2
    assert one_persian.encoding == "ucs2" and one_persian.parts == 1
    assert sms_parts("€" * 80).units == 160 and sms_parts("€" * 80).parts == 1  # two septets each
    assert sms_parts("€" * 81).parts == 2
    # 152 septets then an extension character: it goes whole into the second part
    assert sms_parts("a" * 152 + "€" + "a" * 152).parts == 3
    assert sms_parts("😀" * 35).units == 70 and sms_parts("😀" * 35).parts == 1


@given(gsm_text)
def test_basic_gsm_text_is_160_then_153_a_part(text: str) -> None:
    p = sms_parts(text)
    assert p.encoding == "gsm7" and p.units == len(text)
    assert p.parts == (1 if len(text) <= 160 else math.ceil(len(text) / 153))


@given(persian)
def test_persian_is_70_then_67_a_part(text: str) -> None:
    p = sms_parts(text)
    assert p.encoding == "ucs2" and p.units == len(text)
    assert p.parts == (1 if len(text) <= 70 else math.ceil(len(text) / 67))


@given(anything)
def test_parts_hold_the_text_and_never_waste_a_whole_part(text: str) -> None:
    p = sms_parts(text)
    per_part, single = (153, 160) if p.encoding == "gsm7" else (67, 70)
    if p.units <= single:
        assert p.parts == 1
    else:  # no character split: at most one unit per boundary is left unused
        assert math.ceil(p.units / per_part) <= p.parts <= math.ceil(p.units / (per_part - 1))


@given(gsm_any, st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION) + ["ب", "😀"]))
def test_a_longer_text_never_takes_fewer_parts(text: str, more: str) -> None:
    before, after = sms_parts(text), sms_parts(text + more)
    if before.encoding == after.encoding:
        assert after.parts >= before.parts
    else:  # one character outside GSM-7 turns all of it UCS-2: never fewer parts either
        assert after.encoding == "ucs2" and after.parts >= before.parts


@given(anything, st.integers(0, 10_000))
def test_cost_is_parts_times_price(text: str, price: int) -> None:
    p = sms_parts(text)
    assert p.cost(price) == p.parts * price
