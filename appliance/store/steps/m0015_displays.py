"""Display links for the room screen (issue 13): `/saal/<token>` on a projector, no login.

The token is shown to the clerk once, when the link is created; only its SHA-256 is kept here (like the staff
login sessions in `settings`), so a copy of the database opens no screen. A link belongs to one session and is
revoked, never deleted (the clerk's list shows when it was created, seen last and revoked). No member, device or
address is stored: nothing here for appliance.retention beyond deleting the rows with their session.
Step 15: 13 and 14 are taken by other branches (schema steps only need distinct numbers)."""

VERSION = 15
SQL = """
        CREATE TABLE displays (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            token_sha256 TEXT NOT NULL UNIQUE,   -- hex SHA-256 of the token; the token itself is never stored
            label TEXT NOT NULL DEFAULT '',      -- the clerk's name for it ("Beamer Ratssaal")
            created_at TEXT NOT NULL,
            last_seen TEXT,                      -- the screen's last page or stream (at most every SEEN_EVERY s)
            revoked_at TEXT
        );
        CREATE INDEX displays_session ON displays(session_id, id);
        """
