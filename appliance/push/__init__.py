"""The one push channel to browsers: events stored in SQLite, streamed as server-sent events.

Contract (other features code against it):
    from appliance.push import publish
    publish(db, session_id, topic, payload, audience="all") -> event id (= the SSE id)
A feature's own audiences ("doc:<file id>") are named in audience.FEATURES (so any process may publish them) and
decided by a check registered in create_app: app.extensions[audience.EXT].register("doc", fn), fn(viewer, value, db).
"""

from appliance.push.audience import Audiences, visible
from appliance.push.events import publish

__all__ = ["Audiences", "publish", "visible"]
