"""The one push channel to browsers: events stored in SQLite, streamed as server-sent events.

Contract (other features code against it):
    from appliance.push import publish, register_audience
    publish(db, session_id, topic, payload, audience="all") -> event id (= the SSE id)
    register_audience("doc", fn)  # fn(viewer, value, db) -> bool decides "doc:<value>"
"""

from appliance.push.audience import register_audience, visible
from appliance.push.events import publish

__all__ = ["publish", "register_audience", "visible"]
