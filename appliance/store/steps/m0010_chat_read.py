"""What each chat participant has read: the last message id per (session, participant, room), kept on the box
(captive mini-browsers keep no cookies). Drives the unread counts of the room list and the start page.
participant is chat.rules.participant: member:<id>, device:<mac> for guests, clerk. Personal data: retention
deletes it with the session's chat (appliance/retention.py SESSION_TABLES)."""

VERSION = 10
SQL = """
        CREATE TABLE chat_reads (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            participant TEXT NOT NULL,
            room TEXT NOT NULL,
            last_id INTEGER NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (session_id, participant, room)
        );
        """
