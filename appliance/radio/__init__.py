"""The radios: hostapd control-socket client, parsers, a replaying fake, and the station daemon."""
