"""The one SQLite database (WAL, explicit migrations)."""

from appliance.store.db import open_db

__all__ = ["open_db"]
