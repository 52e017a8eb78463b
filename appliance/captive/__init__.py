"""Keys, QR payloads, the portal and admission: how a device becomes a known member on the box."""
