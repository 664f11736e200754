"""Offline ledger: storage, service operations, verification, backups, rules."""
