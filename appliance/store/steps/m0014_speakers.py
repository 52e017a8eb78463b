"""Running the session (issue 13): the chair, the current agenda item, the room screen's announcement, the rules
of procedure (per body, session and item) and the speakers lists with their requests to speak.

Times of speeches are unix seconds (REAL) like presence: the timer is a pure function of (limit, started_at, now).
`item_id` 0 is the session's list when no agenda item is current (a session without an imported agenda); it is
therefore not a foreign key. Requests, lists, the chair and the announcement name members or may: they go with
the session's other personal data (appliance.retention). The rules of procedure name nobody."""

VERSION = 14
SQL = """
        -- Per session: who chairs (a member whose own device gets the chair's console; clerks always have it),
        -- the item the room is on ("jetzt TOP 5") and the announcement on the room screen.
        CREATE TABLE speakers_session (
            session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            chair_member_id INTEGER REFERENCES members(id) ON DELETE SET NULL,
            current_item_id INTEGER REFERENCES doc_items(id) ON DELETE SET NULL,
            announcement TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL
        );
        -- Rules of procedure (Geschäftsordnung), in layers: a body's row (body set), a session's (session_id,
        -- item_id NULL) and an item's override (session_id and item_id). A NULL column inherits from the layer
        -- above, the top layer from rules.speakers.Procedure's defaults. Seconds; 0 = no limit.
        CREATE TABLE speakers_procedure (
            id INTEGER PRIMARY KEY,
            body TEXT,
            session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
            item_id INTEGER REFERENCES doc_items(id) ON DELETE CASCADE,
            first_seconds INTEGER CHECK (first_seconds >= 0),
            later_seconds INTEGER CHECK (later_seconds >= 0),
            order_seconds INTEGER CHECK (order_seconds >= 0),
            intervention_seconds INTEGER CHECK (intervention_seconds >= 0),
            warn_seconds INTEGER CHECK (warn_seconds >= 0),
            max_speeches INTEGER CHECK (max_speeches >= 0),
            pro_contra INTEGER CHECK (pro_contra IN (0, 1)),
            CHECK ((body IS NOT NULL AND session_id IS NULL AND item_id IS NULL)
                   OR (body IS NULL AND session_id IS NOT NULL))
        );
        CREATE UNIQUE INDEX speakers_procedure_body ON speakers_procedure(body) WHERE body IS NOT NULL;
        CREATE UNIQUE INDEX speakers_procedure_session ON speakers_procedure(session_id)
            WHERE session_id IS NOT NULL AND item_id IS NULL;
        CREATE UNIQUE INDEX speakers_procedure_item ON speakers_procedure(item_id) WHERE item_id IS NOT NULL;
        -- A speakers list per (session, item): only its closed flag needs a row (no row: open).
        CREATE TABLE speakers_lists (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL,
            closed INTEGER NOT NULL DEFAULT 0,
            changed_at TEXT NOT NULL,
            PRIMARY KEY (session_id, item_id)
        );
        -- Requests to speak. kind: contribution (Wortmeldung), point_of_order (Antrag zur Geschäftsordnung),
        -- pro / contra (for or against the running point of order: for_request), intervention (Zwischenfrage or
        -- Kurzintervention to the speech for_request, waits for the chair's admission).
        CREATE TABLE speakers_requests (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL,
            member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('contribution', 'point_of_order', 'pro', 'contra', 'intervention')),
            state TEXT NOT NULL CHECK (state IN ('waiting', 'admitted', 'speaking', 'done', 'withdrawn', 'removed',
                                                 'refused')),
            position INTEGER NOT NULL,       -- order within its group (rules.speakers.queue)
            for_request INTEGER REFERENCES speakers_requests(id) ON DELETE SET NULL,
            added_by TEXT NOT NULL CHECK (added_by IN ('member', 'chair', 'clerk')),
            requested_at REAL NOT NULL,
            started_at REAL,
            ended_at REAL,
            duration REAL,                   -- seconds actually spoken (ended_at - started_at)
            limit_seconds INTEGER,           -- the limit in force when the speech started (0: none)
            extra_seconds INTEGER NOT NULL DEFAULT 0  -- the chair's extensions
        );
        CREATE INDEX speakers_requests_list ON speakers_requests(session_id, item_id, state);
        -- One open request per member, kind and item; two taps at once cannot both get in.
        CREATE UNIQUE INDEX speakers_requests_open ON speakers_requests(session_id, item_id, member_id, kind)
            WHERE state IN ('waiting', 'admitted', 'speaking');
        -- At most one speech at a time per session.
        CREATE UNIQUE INDEX speakers_requests_speaking ON speakers_requests(session_id) WHERE state = 'speaking';
        """
