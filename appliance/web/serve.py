"""`sitzungsbox web`: the Flask app under gunicorn with one gevent worker, never as root.

One gevent worker holds hundreds of idle connections (portal probes, later live streams) cheaply.
gunicorn's gevent worker monkey-patches at worker start, *before* it loads the app (preload_app is
off and nothing here imports Flask or the app at module level), so the app's sockets and threads are
patched consistently. sqlite3 is a C module gevent does not patch: its calls simply block the worker
briefly, which is fine with short transactions and WAL (readers never wait for the writer).
"""

from __future__ import annotations

import gc
import grp
import logging
import os
import pwd
import sys
from pathlib import Path
from typing import Any

from appliance.config import Config

log = logging.getLogger(__name__)

# Paths only: query strings may carry secrets (tokens) and never reach the access log; the one path that carries
# a secret (/saal/<token>) is cut by accesslog.RedactingLogger.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


def _target_user(cfg: Config) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(cfg.web_user)
    except KeyError:
        fallback = pwd.getpwnam("nobody")
        print(f"Benutzer {cfg.web_user!r} gibt es nicht; die Web-Anwendung läuft als 'nobody'.", file=sys.stderr)
        return fallback


def _prepare_state_dir(cfg: Config, uid: int, gid: int) -> None:
    """The web process writes the database (and its WAL files) and binds its hubs' wake sockets in the database's
    wake directory (appliance.push.wake); everything else there stays as it is."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    paths = [cfg.state_dir, cfg.db_path, Path(f"{cfg.db_path}-wal"), Path(f"{cfg.db_path}-shm"),
             Path(f"{cfg.db_path}-wake")]
    for path in paths:
        if path.exists():
            os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(cfg.state_dir, cfg.state_dir.stat().st_mode | 0o700)


def drop_privileges(cfg: Config) -> str | None:
    """If root: become cfg.web_user (or nobody). Returns the user name switched to, None if not root."""
    if os.geteuid() != 0:
        return None
    user = _target_user(cfg)
    _prepare_state_dir(cfg, user.pw_uid, user.pw_gid)
    # Supplementary groups of that user only (e.g. 'sitzungsbox' for the hostapd sockets); root's go.
    os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise SystemExit("Rechte konnten nicht abgegeben werden; die Web-Anwendung startet nicht als root.")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise SystemExit("Rechte konnten nicht endgültig abgegeben werden (setuid(0) war möglich).")
    os.environ["HOME"] = user.pw_dir if os.path.isdir(user.pw_dir) else str(cfg.state_dir)
    os.environ["USER"] = os.environ["LOGNAME"] = user.pw_name
    group = grp.getgrgid(user.pw_gid).gr_name
    print(f"Web-Anwendung läuft als Benutzer {user.pw_name} (Gruppe {group}).", file=sys.stderr)
    return user.pw_name


def make_helper(cfg: Config) -> Any:
    from appliance.helper.client import HelperClient, NullHelper
    return NullHelper() if cfg.demo else HelperClient(cfg.helper_socket)


def make_wsgi(cfg: Config, helper: Any = None):
    """The WSGI app exactly as gunicorn serves it (tests use this)."""
    from appliance.web.app import create_app
    return create_app(cfg, helper=helper if helper is not None else make_helper(cfg))


def settle_heap() -> None:
    """After the worker loaded the app: what exists now (modules, the app, catalogs, templates' code) lives as long
    as the worker, so the cyclic garbage collector stops scanning it (gc.freeze). Without this every full
    collection walks the whole loaded app again — measured ~0.1–0.2 ms of CPU per request amortised, a fifth of a
    trivial request (bench/castprofile). Objects made by requests are collected exactly as before."""
    gc.collect()
    gc.freeze()


def startup_resync(cfg: Config, helper: Any) -> int | None:
    """Re-admit the live admissions: a restarted helper or box starts with an empty nft set."""
    from appliance.captive import admission
    from appliance.helper.client import HelperError
    from appliance.store import open_db

    db = open_db(cfg.db_path)
    try:
        count = admission.resync(db, helper)
    except HelperError as exc:
        print(f"Freigaben konnten nicht erneuert werden (Helfer nicht erreichbar?): {exc}", file=sys.stderr)
        return None
    finally:
        db.conn.close()
    print(f"{count} Freigabe(n) in der Firewall erneuert.", file=sys.stderr)
    return count


def gunicorn_options(cfg: Config) -> dict[str, Any]:
    return {
        "bind": f"{cfg.web_bind}:{cfg.web_port}",
        "workers": cfg.web_workers,
        "worker_class": "gevent",
        "worker_connections": 1000,
        "preload_app": False,  # load after the worker's monkey patching
        "graceful_timeout": 3,
        "timeout": 30,
        "keepalive": 5,
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "logger_class": "appliance.web.accesslog.RedactingLogger",  # the room screen's token never logged
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "sitzungsbox-web",
        # A lost Host header or huge request line is a client bug, not a reason to hold memory.
        "limit_request_line": 4094,
        # gunicorn's defaults for these are taken when gunicorn.config is imported; pin them to who we
        # are now (after the drop), or it chowns its worker heartbeat file back to root and fails.
        "user": os.getuid(),
        "group": os.getgid(),
        # gunicorn >= 24 opens a runtime control socket by default; nothing here uses it.
        "control_socket_disable": True,
    }


def main(cfg: Config) -> int:
    drop_privileges(cfg)
    from gunicorn.app.base import BaseApplication  # after the drop: its config takes defaults at import

    helper = make_helper(cfg)
    startup_resync(cfg, helper)
    # gunicorn's arbiter sends READY=1 itself; the watchdog pings only while /healthz answers, so hung
    # workers get the service restarted. Runs in the arbiter (WATCHDOG_PID); forked workers never ping.
    from appliance import sdnotify
    host = "127.0.0.1" if cfg.web_bind in ("0.0.0.0", "") else cfg.web_bind
    sdnotify.Watchdog(sdnotify.http_ok(f"http://{host}:{cfg.web_port}/healthz")).start()

    class WebApplication(BaseApplication):
        def load_config(self) -> None:
            for key, value in gunicorn_options(cfg).items():
                if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                    self.cfg.set(key, value)

        def load(self):
            # Runs in the worker after gevent patched it; the app and its database open here.
            app = make_wsgi(cfg)
            settle_heap()
            return app

    WebApplication().run()
    return 0
