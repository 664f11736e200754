"""The local POS-facing HTTP API (loopback, bearer token)."""
