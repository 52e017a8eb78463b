"""Room chat (issue 4): rooms, messages with client ids, moderation, export and wipe."""
