"""Import jobs name their owner (the process running them: pid and its start time) and keep their summary
(counts of what was in the source, what arrived, notes), so a job whose process died is shown as failed
(appliance.documents.jobs.reap) instead of running forever."""

VERSION = 8
SQL = """
        ALTER TABLE doc_imports ADD COLUMN owner_pid INTEGER;
        ALTER TABLE doc_imports ADD COLUMN owner_started REAL;
        ALTER TABLE doc_imports ADD COLUMN summary TEXT NOT NULL DEFAULT '{}';
        """
