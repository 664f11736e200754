"""The hub as an ASGI app for uvicorn workers: the database URL comes from
$LOYALTY_HUB_DB and the config file from $LOYALTY_HUB_CONFIG (both set by
`loyalty-hub serve`); the schema is already migrated."""

from __future__ import annotations

import os

from sync.hub.app import create_hub_app
from sync.hub.config import load_hub_config
from sync.hub.db import create_hub_engine
from sync.hub.service import Hub

app = create_hub_app(Hub(create_hub_engine(os.environ.get("LOYALTY_HUB_DB", "sqlite:///hub.sqlite3"))),
                     load_hub_config())
