"""Messages to members: SMS after a purchase, a welcome, a tier change, a birthday,
points about to expire, offers and campaigns, and verification codes.

Pure parts (no I/O; checked by the import contracts in pyproject.toml): `parts`
(SMS part counting), `text` (numbers, money and dates as a member reads them),
`templates` (placeholders checked when loaded), `triggers` (what an event becomes),
`decency` (opt-out, quiet hours, daily limit, max age). The shell: `queue` (the
messages table, claimed with a lease), `producer` (events and daily jobs into
messages), `gateways`, `worker`, `verification`, `campaigns`, `webhooks`.

Terminals never send messages and never hold gateway credentials: the sync writes a
small `message_events` row per relevant entry and per new member in its own
transaction, and a worker (`loyalty-hub messages worker`) turns them into messages
after it commits, so messaging can never slow or fail a terminal's sync.
"""
