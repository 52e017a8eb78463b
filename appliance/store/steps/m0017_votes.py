"""Votes (issue 14): open and named votes on the members' devices, paper ballots counted by the clerk, who stands
in for whom, who is conflicted on which item, and the votes' own append-only log.

One ballot row per seat that may vote (not per device): created for every eligible member when the vote opens,
and for someone who may still cast later (an arrival) at their first cast. A ballot is named in the log by a
random `token`, never by its row id (ids in roster order would name the member again). When an OPEN vote
closes, the ballot's member_id and name are cleared and its idempotency keys go: what stays is the choice per
faction (vote_faction_counts and the ballots' faction) — the link between a member and their vote is dropped;
a NAMED vote keeps the names (the minutes record each member's vote). Times are unix seconds (REAL).

`vote_log` is append-only: the triggers refuse every UPDATE, and a DELETE unless the session is gone (a wipe
deletes the session, and the cascade follows) or a `vote_log_purge` row for the session exists (retention,
which names itself there, in the same transaction)."""

VERSION = 17
SQL = """
        CREATE TABLE votes (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            item_id INTEGER,                  -- doc_items id (NULL: none current); not a key: the minutes keep it
            item_title TEXT NOT NULL DEFAULT '',  -- as the item was called at the opening
            question TEXT NOT NULL,
            mode TEXT NOT NULL CHECK (mode IN ('open', 'named', 'paper')),
            rule TEXT NOT NULL CHECK (rule IN ('simple', 'two_thirds', 'statutory', 'custom')),
            rule_params TEXT NOT NULL DEFAULT '', -- custom: JSON {num, den, base: cast|statutory, strict}
            state TEXT NOT NULL CHECK (state IN ('open', 'closed', 'cancelled')),
            may_change INTEGER NOT NULL CHECK (may_change IN (0, 1)),
            attempt INTEGER NOT NULL DEFAULT 1,
            repeat_of INTEGER REFERENCES votes(id) ON DELETE SET NULL,
            statutory INTEGER NOT NULL,       -- statutory members (gesetzliche Mitgliederzahl) at the opening
            eligible INTEGER NOT NULL DEFAULT 0,
            present INTEGER NOT NULL DEFAULT 0,   -- voting members and deputies present at the opening
            conflicted INTEGER NOT NULL DEFAULT 0,
            quorum_needed INTEGER NOT NULL DEFAULT 0,
            quorate INTEGER NOT NULL DEFAULT 1,
            opened_at REAL NOT NULL,
            closes_at REAL,                   -- the chair's countdown: casts end here, the close follows
            closed_at REAL,
            yes INTEGER, no INTEGER, abstain INTEGER, by_hand INTEGER,
            accepted INTEGER,                 -- NULL: custom rule not decided, cancelled, open
            result_text TEXT NOT NULL DEFAULT '',
            cancel_reason TEXT NOT NULL DEFAULT '',
            cast_count INTEGER NOT NULL DEFAULT 0
        );
        CREATE UNIQUE INDEX votes_one_open ON votes(session_id) WHERE state = 'open';
        CREATE INDEX votes_session ON votes(session_id, id);
        CREATE TABLE vote_ballots (
            id INTEGER PRIMARY KEY,
            vote_id INTEGER NOT NULL REFERENCES votes(id) ON DELETE CASCADE,
            token TEXT NOT NULL UNIQUE,
            member_id INTEGER REFERENCES members(id) ON DELETE SET NULL,  -- NULL once an open vote closed
            name TEXT,                        -- named votes: kept for the minutes
            faction TEXT NOT NULL DEFAULT '',
            stands_in_for INTEGER REFERENCES members(id) ON DELETE SET NULL,  -- a deputy's seat
            eligible_at_open INTEGER NOT NULL CHECK (eligible_at_open IN (0, 1)),
            choice TEXT CHECK (choice IN ('yes', 'no', 'abstain')),
            by_clerk INTEGER NOT NULL DEFAULT 0,
            cast_at REAL
        );
        CREATE UNIQUE INDEX vote_ballots_member ON vote_ballots(vote_id, member_id) WHERE member_id IS NOT NULL;
        -- Idempotency keys of casts while the vote is open: a retried request is acknowledged, not counted again.
        CREATE TABLE vote_cast_keys (
            vote_id INTEGER NOT NULL REFERENCES votes(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            ballot_id INTEGER NOT NULL REFERENCES vote_ballots(id) ON DELETE CASCADE,
            choice TEXT NOT NULL,
            PRIMARY KEY (vote_id, key)
        );
        CREATE TABLE vote_faction_counts (
            vote_id INTEGER NOT NULL REFERENCES votes(id) ON DELETE CASCADE,
            faction TEXT NOT NULL,
            eligible INTEGER NOT NULL,
            yes INTEGER NOT NULL, no INTEGER NOT NULL, abstain INTEGER NOT NULL,
            PRIMARY KEY (vote_id, faction)
        );
        -- The clerk's record of who stands in for whom in this session (a deputy for one member).
        CREATE TABLE vote_deputies (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            deputy_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
            member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
            PRIMARY KEY (session_id, deputy_id)
        );
        -- Declared conflicted (befangen) on an item (0: the session's votes without an item).
        CREATE TABLE vote_conflicts (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL,
            member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
            marked_at REAL NOT NULL,
            PRIMARY KEY (session_id, item_id, member_id)
        );
        -- Per body: may a member change a cast vote until the close (rules of procedure)?
        CREATE TABLE vote_settings (
            body TEXT PRIMARY KEY,
            may_change INTEGER NOT NULL CHECK (may_change IN (0, 1))
        );
        -- Paper ballots (secret votes, elections, seat distributions): the clerk's counts and the box's steps.
        CREATE TABLE vote_paper (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            item_id INTEGER,
            item_title TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL CHECK (kind IN ('majority', 'election', 'runoff', 'hare_niemeyer', 'dhondt')),
            title TEXT NOT NULL,
            input TEXT NOT NULL,              -- JSON: the counts as entered
            outcome TEXT NOT NULL,            -- JSON: the computation's result
            steps TEXT NOT NULL,              -- the German lines for the minutes, one per line
            recorded_at REAL NOT NULL
        );
        CREATE TABLE vote_log (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            vote_id INTEGER,
            at REAL NOT NULL,
            actor TEXT NOT NULL,              -- 'chair', 'clerk@<ip>', 'cli', 'member' (no id in open votes)
            action TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'  -- JSON
        );
        CREATE INDEX vote_log_session ON vote_log(session_id, id);
        CREATE TABLE vote_log_purge (
            session_id INTEGER PRIMARY KEY,
            by TEXT NOT NULL
        );
        CREATE TRIGGER vote_log_no_update BEFORE UPDATE ON vote_log
        BEGIN SELECT RAISE(ABORT, 'vote_log is append-only'); END;
        CREATE TRIGGER vote_log_no_delete BEFORE DELETE ON vote_log
        WHEN EXISTS (SELECT 1 FROM sessions WHERE id = OLD.session_id)
             AND NOT EXISTS (SELECT 1 FROM vote_log_purge WHERE session_id = OLD.session_id)
        BEGIN SELECT RAISE(ABORT, 'vote_log is append-only'); END;
        """
