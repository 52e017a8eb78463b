"""Sessions, members with their personal keys, stations, admissions, audit (issue 2)."""

VERSION = 1
SQL = """
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            body TEXT NOT NULL,              -- Gremium, e.g. "Rat der Stadt"
            title TEXT NOT NULL,
            date TEXT NOT NULL,              -- ISO date
            venue TEXT NOT NULL DEFAULT '',
            ssid TEXT NOT NULL,
            guest_key TEXT NOT NULL,
            key_generation INTEGER NOT NULL DEFAULT 1,
            active INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        -- At most one session is live on the box at a time.
        CREATE UNIQUE INDEX sessions_one_active ON sessions(active) WHERE active = 1;
        CREATE TABLE members (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            faction TEXT NOT NULL DEFAULT '',
            role TEXT NOT NULL CHECK (role IN ('member', 'deputy', 'administration', 'guest')),
            voting INTEGER NOT NULL DEFAULT 0,
            body TEXT NOT NULL DEFAULT '',
            keyid TEXT NOT NULL UNIQUE,      -- hostapd keyid: opaque, never the name
            passphrase TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX members_session ON members(session_id);
        -- Stations as hostapd reports them (written by the radio daemon only).
        CREATE TABLE stations (
            mac TEXT PRIMARY KEY,
            interface TEXT NOT NULL,
            keyid TEXT,
            connected INTEGER NOT NULL,
            connected_at TEXT,
            disconnected_at TEXT
        );
        CREATE INDEX stations_keyid ON stations(keyid);
        -- A device let through the firewall: the pair (MAC, IP) is what nftables matches.
        CREATE TABLE admissions (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            mac TEXT NOT NULL,
            ip TEXT NOT NULL,
            member_id INTEGER REFERENCES members(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('member', 'guest')),
            admitted_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE UNIQUE INDEX admissions_live ON admissions(mac, ip) WHERE revoked_at IS NULL;
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        );
        """
