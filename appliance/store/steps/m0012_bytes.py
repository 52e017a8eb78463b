"""Documents on a shared radio (issue 16): bytes the box actually sent per session, file and kind of request
(`viewer` ranges of the in-page viewer, other `range` requests, `whole` files, `zip`), summed by each web
worker in memory and added here every few seconds (appliance.documents.traffic). Aggregate counts only: no
member, device or address, so nothing here for appliance.retention. `opens`: requests that began at the
file's first byte (a viewer opening the file), the basis of the viewer's saving on the clerk's page.
`doc_files.optimised_sha256`: the clerk's optimised copy (Ghostscript) beside the original, if it was smaller."""

VERSION = 12
SQL = """
        CREATE TABLE doc_traffic (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            file_id INTEGER NOT NULL,           -- 0: bytes of a ZIP that belong to no single file
            kind TEXT NOT NULL CHECK (kind IN ('viewer', 'range', 'whole', 'zip')),
            bytes INTEGER NOT NULL DEFAULT 0,
            requests INTEGER NOT NULL DEFAULT 0,
            opens INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (session_id, file_id, kind)
        );
        ALTER TABLE doc_files ADD COLUMN optimised_sha256 TEXT;
        """
