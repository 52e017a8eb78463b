"""Use cases: one function per act a person performs (activate a session, import members, rotate keys ...).

Each runs in one transaction with one audit entry, drives the radio and firewall through their adapters, and is
what both the web view and the `sitzungsbox` command call. No Flask here.
"""
