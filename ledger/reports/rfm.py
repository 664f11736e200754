"""RFM scoring: recency, frequency and monetary value, each 1 (lowest) to 5 (highest)
by the member's place among all members who bought, and a segment named from the
three. Pure: rows in, scores out; equal values always get equal scores."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

SCORES = 5


@dataclass(frozen=True)
class Activity:
    member_id: str
    last_visit: datetime | None  # aware UTC; None: never bought
    visits: int
    spend: int  # Rial, net of refunds


@dataclass(frozen=True)
class Rfm:
    member_id: str
    recency_days: int | None
    visits: int
    spend: int
    r: int  # 0 for a member who never bought
    f: int
    m: int
    segment: str  # a key of SEGMENTS


# (key, English, Persian), in the order they are tried
SEGMENTS: dict[str, tuple[str, str]] = {
    "champions": ("Champions", "قهرمانان"),
    "loyal": ("Loyal", "وفادار"),
    "new": ("New", "تازه‌وارد"),
    "at_risk": ("At risk", "در معرض ریزش"),
    "hibernating": ("Hibernating", "خفته"),
    "regular": ("Regular", "عادی"),
    "no_purchase": ("No purchase yet", "بدون خرید"),
}

# What head office should do for each segment: (English, Persian)
ACTIONS: dict[str, tuple[str, str]] = {
    "champions": ("Reward them: early access, top-tier offers, ask them to refer friends",
                  "پاداش: دسترسی زودهنگام، پیشنهاد ویژه سطح بالا، دعوت به معرفی دوستان"),
    "loyal": ("Keep them: points multipliers on their favourite categories, tier upgrade offers",
              "حفظ: ضریب امتیاز در دسته‌های محبوبشان، پیشنهاد ارتقای سطح"),
    "new": ("Welcome them: a second-visit bonus within 30 days", "خوشامد: جایزه خرید دوم تا ۳۰ روز"),
    "at_risk": ("Win them back now: a personal offer before they leave", "بازگرداندن: پیشنهاد شخصی پیش از ریزش"),
    "hibernating": ("Wake them: a time-limited bonus by SMS; stop if they do not answer",
                    "بیدار کردن: جایزه زمان‌دار با پیامک؛ در صورت بی‌پاسخی توقف"),
    "regular": ("Grow the basket: offers on categories they do not buy yet", "افزایش سبد: پیشنهاد در دسته‌های تازه"),
    "no_purchase": ("Activate: a first-purchase bonus", "فعال‌سازی: جایزه اولین خرید"),
}


def segment_of(r: int, f: int, m: int) -> str:
    if r == 0:
        return "no_purchase"
    if r >= 4 and f >= 4 and m >= 4:
        return "champions"
    if f >= 4:
        return "loyal" if r >= 3 else "at_risk"
    if r >= 4 and f <= 2:
        return "new"
    if r <= 2 and f >= 3:
        return "at_risk"
    if r <= 2:
        return "hibernating"
    return "regular"


def _scorer(values: Sequence[int]) -> Callable[[int], int]:
    """value -> 1..5: the share of `values` at or below it, in fifths rounded up. Ties
    share a score, a larger value never scores lower, and the largest scores 5."""
    return _scorer_of_sorted(sorted(values))


def _scorer_of_sorted(ordered: Sequence[int]) -> Callable[[int], int]:
    n = len(ordered)
    return lambda v: (SCORES * bisect_right(ordered, v) + n - 1) // n


def cuts_of_sorted(ordered: Sequence[int]) -> tuple[int | None, ...]:
    """For the scores 2 to 5, the least value of the population that scores at least
    that (None: none does); a value of the population below the first cut scores 1.
    What a database query needs to score a member as `_scorer` would: a value scores
    at least k when at least ceil(((k-1)n + 1) / 5) of the n values are at or below it."""
    n = len(ordered)
    cuts: list[int | None] = []
    for k in range(2, SCORES + 1):
        needed = ((k - 1) * n + SCORES) // SCORES
        cuts.append(ordered[needed - 1] if 1 <= needed <= n else None)
    return tuple(cuts)


def score(activity: Sequence[Activity], now: datetime) -> list[Rfm]:
    bought = [a for a in activity if a.last_visit is not None and a.visits > 0]
    recency = {a.member_id: max((now - a.last_visit).days, 0) for a in bought}  # type: ignore[operator]
    # recent is good: score the negated days, so fewer days rank higher
    r_of = _scorer([-d for d in recency.values()]) if bought else None
    f_of = _scorer([a.visits for a in bought]) if bought else None
    m_of = _scorer([a.spend for a in bought]) if bought else None
    out = []
    for a in activity:
        if a.member_id in recency and r_of and f_of and m_of:
            r, f, m = r_of(-recency[a.member_id]), f_of(a.visits), m_of(a.spend)
            out.append(Rfm(a.member_id, recency[a.member_id], a.visits, a.spend, r, f, m, segment_of(r, f, m)))
        else:
            out.append(Rfm(a.member_id, None, 0, a.spend, 0, 0, 0, "no_purchase"))
    return out


class Ranks:
    """The scores of one population, built from a stream of its buyers' (days since
    the last visit, visits, spend) and kept as sorted integers alone, so a chain's
    millions of members are scored without holding a row each; then scores one member
    at a time, exactly as `score` would."""

    def __init__(self, buyers: Iterable[tuple[int, int, int]]) -> None:
        recency, visits, spend = array("q"), array("q"), array("q")
        for days, v, s in buyers:
            recency.append(-days)  # recent is good: fewer days rank higher
            visits.append(v)
            spend.append(s)
        self.buyers = len(recency)
        ordered = [sorted(values) for values in (recency, visits, spend)]
        self._r, self._f, self._m = (_scorer_of_sorted(o) if o else None for o in ordered)
        # (recency as minus the days, visits, spend): the cuts of each score, for SQL
        self.cuts: tuple[tuple[int | None, ...], ...] = tuple(cuts_of_sorted(o) for o in ordered)

    def of(self, days: int | None, visits: int, spend: int) -> tuple[int, int, int, str]:
        """(r, f, m, segment) of a member; days None or no visits: never bought."""
        if days is None or visits <= 0 or self._r is None or self._f is None or self._m is None:
            return 0, 0, 0, "no_purchase"
        r, f, m = self._r(-days), self._f(visits), self._m(spend)
        return r, f, m, segment_of(r, f, m)
