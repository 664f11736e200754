"""Back-office reports: RFM scoring and KPIs (pure), and the Excel export that streams
them with the ledger's rows. Read-only: reports open the database directly."""
