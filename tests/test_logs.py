"""The log's repeat filter: a flood of one kind of message is bounded, then summed up."""

from __future__ import annotations

import io
import logging

from terminal_agent.logs import RepeatFilter


def test_a_flood_of_one_message_is_bounded_and_summed_up() -> None:
    now = [0.0]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RepeatFilter(per_window=3, window_s=60, clock=lambda: now[0]))
    log = logging.getLogger("test.flood")
    log.addHandler(handler)
    log.propagate = False
    try:
        for i in range(1000):
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                log.error("accept failed on fd %d", i, exc_info=True)
        log.warning("another kind")
        now[0] = 61
        log.error("accept failed on fd %d", 1000)
    finally:
        log.removeHandler(handler)
    lines = out.getvalue().splitlines()
    accepts = [ln for ln in lines if ln.startswith("accept failed")]
    assert len(accepts) == 5 and "held back for the rest" in accepts[3]
    assert accepts[4] == "accept failed on fd 1000 [996 more like it were held back]"
    assert "another kind" in lines and out.getvalue().count("Traceback") == 3


def test_the_agent_warns_at_start_of_a_member_range_holding_a_bank_prefix(caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from ledger.cardpolicy import CardPolicy, CardRange
    from terminal_agent.daemon import warn_ranges

    with caplog.at_level(logging.WARNING):
        warn_ranges(CardPolicy((CardRange("77", (10, 12), True), CardRange("6395", (16,), False))))
    assert [r.getMessage() for r in caplog.records] == [
        "[cards] the member range 6395 holds Shetab 639599: a number there with a valid check digit is refused as a "
        "bank card; print no member cards there"]
