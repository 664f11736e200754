"""Defects the simulation has found in today's code, by name. `--allow NAME` (or
`--allow-known`) lets a run go on past one of them: the auditor records where it
fired, sets aside what it spoils (a member the hub never heard of, a terminal the hub
refuses for ever...) and checks everything else. TEMPORARY: remove a name here once
its fix has landed, and the seeds that found it fail again if the fix is incomplete."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownDefect:
    name: str
    invariant: str
    diagnosis: str


KNOWN_DEFECTS: dict[str, KnownDefect] = {d.name: d for d in (
    KnownDefect("negative-balance-refused", "zero_redeem_refused",
                "post_sale refuses when redeem_points > balance, so with a balance below zero (two branches "
                "redeemed the same points offline, or a refund) even a sale redeeming 0 is refused"),
    KnownDefect("refund-negative-balance", "local_negative_balance",
                "refund() reverses the sale's earned points in full although they were already redeemed, "
                "taking the balance below zero without a word"),
    KnownDefect("clock-back-directory-loss", "directory_reaches_hub",
                "SyncClient sends members/cards newer than directory_since, a watermark from the terminal's "
                "own clock; a row stamped before it (the clock was stepped back) is never sent"),
    KnownDefect("ruleset-forgotten-on-restart", "ruleset_converges",
                "the hub's table is stored in sync_state but Ledger.open starts on the configured (built-in) "
                "table; sync_state.ruleset_hash already equals the hub's, so the hub never sends it again"),
    KnownDefect("restore-sequence-gap", "sync_refused",
                "after a restore from an older backup the terminal neither takes back its own entries the hub "
                "holds nor continues after them: it reuses their seqs and every batch is refused 409 "
                "sequence_gap, for ever (with nothing new to send it just silently lacks them)"),
    KnownDefect("bank-card-issued", "payment_card_refused",
                "Ledger.issue_card/replace_card check only require_card_number, not ledger.cardpolicy: a "
                "Visa/Shetab number is stored as a member card and synced to the hub"),
    # found by this simulation
    KnownDefect("bank-card-as-gift-card", "payment_card_refused",
                "Ledger.gift_issue checks only require_card_number: a payment card number becomes a gift card, "
                "is written to the audit log's target, the entries and the hub"),
    KnownDefect("huge-amount-overflow", "unclean_error",
                "SaleLine allows 10^6 x 10^13 Rial a line, but a sale past int64 makes post_sale fail with "
                "sqlite3's OverflowError (not a LedgerError refusal); LimitExceeded exists but nothing raises it"),
    KnownDefect("card-status-diverges", "cards_converge",
                "the hub lets a newer lost/blocked status replace the other (same rank), SyncClient._apply takes "
                "only a higher rank: the branches keep different statuses (and refusal texts) for one card"),
    KnownDefect("backup-rotation-clock-back", "unclean_error",
                "backup_now names a backup by the clock and rotates by name: after the clock was stepped back "
                "the new backup sorts oldest, rotate() deletes it and backup_now fails with FileNotFoundError"),
)}
