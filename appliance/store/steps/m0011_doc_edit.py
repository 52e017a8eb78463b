"""Clerks correct single documents (issue 12): files get an order of their own within their item (`position`,
existing rows keep their order by id), and `doc_reads` remembers which member opened which file, so that
after a replacement exactly those members see „neue Fassung“ (`stale` = 1 until they open the new version).
Public reads stay out of the clerk's download log (doc_downloads); doc_reads is shown to nobody and goes with
the session's other personal data (appliance.retention)."""

VERSION = 11
SQL = """
        ALTER TABLE doc_files ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
        UPDATE doc_files SET position = id;
        CREATE TABLE doc_reads (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            member_id INTEGER NOT NULL,
            file_id INTEGER NOT NULL,
            stale INTEGER NOT NULL DEFAULT 0,   -- 1: the member read an earlier version of this file
            at TEXT NOT NULL,
            PRIMARY KEY (member_id, file_id)
        );
        CREATE INDEX doc_reads_file ON doc_reads(file_id);
        """
