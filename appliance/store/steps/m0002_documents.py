"""Session documents: agenda items, files (content-addressed blobs), the download log, imports (issue 3)."""

VERSION = 2
SQL = """
        -- One agenda item (TOP) of a session; public = 0 for the non-public part.
        CREATE TABLE doc_items (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            number TEXT NOT NULL DEFAULT '',
            title TEXT NOT NULL,
            public INTEGER NOT NULL DEFAULT 1,
            position INTEGER NOT NULL DEFAULT 0,
            external_id TEXT,                -- OParl id: a resumed import finds what it already has
            created_at TEXT NOT NULL
        );
        CREATE INDEX doc_items_session ON doc_items(session_id, position);
        CREATE UNIQUE INDEX doc_items_external ON doc_items(session_id, external_id) WHERE external_id IS NOT NULL;
        -- A file of a session, optionally under an agenda item. The bytes live on disk under their SHA-256.
        CREATE TABLE doc_files (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            item_id INTEGER REFERENCES doc_items(id) ON DELETE CASCADE,
            name TEXT NOT NULL,              -- file name offered for download
            title TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            mime TEXT NOT NULL,
            public INTEGER NOT NULL DEFAULT 1,  -- readable by all only if the file AND its item are public
            late INTEGER NOT NULL DEFAULT 0,    -- Tischvorlage: added during the session
            external_id TEXT,
            added_at TEXT NOT NULL
        );
        CREATE INDEX doc_files_session ON doc_files(session_id, item_id);
        CREATE INDEX doc_files_sha ON doc_files(sha256);
        CREATE UNIQUE INDEX doc_files_external ON doc_files(session_id, external_id) WHERE external_id IS NOT NULL;
        -- Who fetched a non-public file, and when (kept after the file is wiped: the clerk's record).
        CREATE TABLE doc_downloads (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            file_id INTEGER,
            file_title TEXT NOT NULL,
            who TEXT NOT NULL,
            member_id INTEGER,
            via TEXT NOT NULL,               -- 'file' | 'zip'
            at TEXT NOT NULL
        );
        CREATE INDEX doc_downloads_session ON doc_downloads(session_id, at);
        -- Long imports (OParl, folders): progress and what was skipped, so a rerun resumes and reports.
        CREATE TABLE doc_imports (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            state TEXT NOT NULL,             -- 'running' | 'done' | 'failed'
            done INTEGER NOT NULL DEFAULT 0,
            total INTEGER NOT NULL DEFAULT 0,
            problems TEXT NOT NULL DEFAULT '[]',
            started_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        """
