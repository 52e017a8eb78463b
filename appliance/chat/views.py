"""Chat pages."""

from appliance.web.live import bp  # noqa: F401
