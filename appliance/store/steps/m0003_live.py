"""Push events, presence (devices, intervals, corrections) and room chat (issue 4)."""

VERSION = 3
SQL = """
        -- The one push channel: every event any feature sends to browsers. The autoincrement id is the SSE id;
        -- AUTOINCREMENT so an id is never reused after a wipe (a browser resuming from it must not skip).
        -- No foreign key on purpose: publishing must never fail because of a feature's own bookkeeping.
        CREATE TABLE push_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id INTEGER NOT NULL,
            topic TEXT NOT NULL,
            audience TEXT NOT NULL,
            payload TEXT NOT NULL,           -- JSON object
            at TEXT NOT NULL
        );
        CREATE INDEX push_events_session ON push_events(session_id, id);

        -- Presence engine state per device (a device is only a device; the member comes from keyid/admission).
        CREATE TABLE presence_devices (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
            device TEXT NOT NULL,            -- the MAC as a device key, never as a person
            linked INTEGER NOT NULL,         -- believed on the network now
            last_seen REAL NOT NULL,         -- unix time of the last evidence
            hold_until REAL NOT NULL DEFAULT 0,  -- after a box restart: keep counting until then
            source TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (session_id, member_id, device)
        );
        CREATE TABLE presence_state (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
            override TEXT CHECK (override IN ('present', 'absent')),
            PRIMARY KEY (session_id, member_id)
        );
        -- Every change is a recorded interval: arrival .. leaving (NULL while present).
        CREATE TABLE presence_intervals (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
            start REAL NOT NULL,
            end REAL,
            start_source TEXT NOT NULL,
            end_source TEXT,
            corrected INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX presence_intervals_member ON presence_intervals(session_id, member_id, start);
        CREATE UNIQUE INDEX presence_intervals_open ON presence_intervals(session_id, member_id) WHERE end IS NULL;
        CREATE TABLE presence_corrections (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
            at REAL NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('present', 'absent', 'auto')),
            reason TEXT NOT NULL,
            actor TEXT NOT NULL
        );

        -- Room chat. (session_id, client_id) is unique: a resent message is the same message.
        CREATE TABLE chat_messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            room TEXT NOT NULL,              -- 'all' | 'faction:<name>' | 'dm:<a>:<b>' | 'announce'
            client_id TEXT NOT NULL,
            author_kind TEXT NOT NULL CHECK (author_kind IN ('member', 'guest', 'clerk')),
            author_member_id INTEGER,
            author_name TEXT NOT NULL,
            body TEXT NOT NULL,
            at TEXT NOT NULL,
            hidden INTEGER NOT NULL DEFAULT 0
        );
        CREATE UNIQUE INDEX chat_messages_client ON chat_messages(session_id, client_id);
        CREATE INDEX chat_messages_room ON chat_messages(session_id, room, id);
        CREATE TABLE chat_mutes (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            participant TEXT NOT NULL,       -- 'member:<id>' or 'device:<mac>' for guests
            at TEXT NOT NULL,
            PRIMARY KEY (session_id, participant)
        );
        CREATE TABLE chat_settings (
            session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            direct_messages INTEGER NOT NULL DEFAULT 0,
            guests_write INTEGER NOT NULL DEFAULT 0
        );
        """
