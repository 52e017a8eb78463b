"""Fetching documents before the session (issue 16, rules.prefetch): `doc_traffic.kind` gains 'prefetch' (a
device's background fetch of a whole viewer copy while members arrive). SQLite cannot change a CHECK constraint,
so the table is rebuilt with its rows. Aggregate counts only, as in step 12: nothing for appliance.retention.
Step 16: the next number free on every branch when written (steps only need distinct numbers)."""

VERSION = 16
SQL = """
        CREATE TABLE doc_traffic_new (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            file_id INTEGER NOT NULL,           -- 0: bytes of a ZIP that belong to no single file
            kind TEXT NOT NULL CHECK (kind IN ('viewer', 'range', 'whole', 'zip', 'prefetch')),
            bytes INTEGER NOT NULL DEFAULT 0,
            requests INTEGER NOT NULL DEFAULT 0,
            opens INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (session_id, file_id, kind)
        );
        INSERT INTO doc_traffic_new(session_id, file_id, kind, bytes, requests, opens)
            SELECT session_id, file_id, kind, bytes, requests, opens FROM doc_traffic;
        DROP TABLE doc_traffic;
        ALTER TABLE doc_traffic_new RENAME TO doc_traffic;
        """
