"""The one SQLite database (WAL, explicit migrations) and its one transaction helper."""

from appliance.store.db import open_db
from appliance.store.transaction import transaction

__all__ = ["open_db", "transaction"]
