"""`sync_once` tells its progress in entries the hub acknowledged (what `loyalty-agent
sync now` shows as a bar when a backlog is more than one batch)."""

from __future__ import annotations

from typing import Any

from tests.progress_recorder import Recorder


def test_a_backlog_is_reported_entry_by_entry_as_the_hub_acknowledges_it(terminals: Any) -> None:
    t = terminals("T1")  # batches of 50
    m = t.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    for i in range(120):
        t.ledger.adjust(member_id=m.id, points=1, reason=f"r{i}", actor="mgr")
    backlog = t.client.unsent_entries()
    assert backlog >= 120
    seen = Recorder()
    report = t.client.sync_once(progress=seen)
    assert seen.done == report.sent == backlog and seen.advances >= 3
    assert t.client.unsent_entries() == 0
