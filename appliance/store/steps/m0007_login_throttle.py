"""Failed staff logins per (role, client address), shared by every web worker process: the throttle is checked and
updated in one BEGIN IMMEDIATE transaction (appliance.usecases.login), so N workers do not give a guesser N times
the tries. `failures` is a JSON list of failure times (epoch seconds, oldest first); rows whose last failure is
older than the policy's horizon are deleted on the next write."""

VERSION = 7
SQL = """
        CREATE TABLE login_throttle (
            role TEXT NOT NULL,
            ip TEXT NOT NULL,
            failures TEXT NOT NULL DEFAULT '[]',
            last_at REAL NOT NULL,
            PRIMARY KEY (role, ip)
        ) WITHOUT ROWID;
        CREATE INDEX login_throttle_last ON login_throttle(last_at);
        """
