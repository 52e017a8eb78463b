"""The privileged firewall helper (server), its wire protocol and the web app's client."""
