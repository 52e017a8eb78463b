"""Technicians' dashboard (issue 5): time series, the latest snapshot, alerts. Written by the monitor only."""

VERSION = 4
SQL = """
        -- One point per series and time bucket. res 1: one-second buckets kept for an hour; res 60:
        -- minute averages kept for a day (appliance/monitor/timeseries.py).
        CREATE TABLE monitor_points (
            series TEXT NOT NULL,            -- e.g. clients, busy:wlan0, temp, signal:<mac>
            res INTEGER NOT NULL,
            ts INTEGER NOT NULL,             -- epoch seconds, start of the bucket
            value REAL NOT NULL,
            PRIMARY KEY (series, res, ts)
        ) WITHOUT ROWID;
        CREATE INDEX monitor_points_age ON monitor_points(res, ts);
        -- The last sample as JSON: one sample serves every dashboard reader.
        CREATE TABLE monitor_state (
            key TEXT PRIMARY KEY,
            at REAL NOT NULL,
            value TEXT NOT NULL
        );
        CREATE TABLE monitor_alerts (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,              -- weak_signal, high_retries, channel_busy, radio_full, ...
            subject TEXT NOT NULL,           -- what it is about: a radio, a station, the box
            severity TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),
            message TEXT NOT NULL,
            value REAL,
            started_at REAL NOT NULL,
            ended_at REAL
        );
        CREATE UNIQUE INDEX monitor_alerts_open ON monitor_alerts(kind, subject) WHERE ended_at IS NULL;
        CREATE INDEX monitor_alerts_started ON monitor_alerts(started_at);
        """
