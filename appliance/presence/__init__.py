"""Presence (issue 4): who is in the room, decided in one place (appliance.presence.engine)."""
