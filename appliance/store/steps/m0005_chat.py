"""Room chat: who wrote a message as a stable key (member:<id>, device:<mac> for guests, clerk), so resends,
the rate limit and mutes never depend on a display name."""

VERSION = 5
SQL = """
        ALTER TABLE chat_messages ADD COLUMN author_key TEXT NOT NULL DEFAULT '';
        CREATE INDEX chat_messages_author ON chat_messages(session_id, author_key, id);
        """
