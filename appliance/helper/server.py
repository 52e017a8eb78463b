"""The privileged helper: the only process that changes the firewall.

It listens on a Unix stream socket, accepts connections only from allowed uids (SO_PEERCRED), and
turns each validated request into exactly one `nft add|delete element` on the `admitted` set of the
box's own table (plus a conntrack flush after a revoke). One thread per connection, short timeouts.
"""

from __future__ import annotations

import io
import logging
import os
import pwd
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
from pathlib import Path

from appliance.config import Config
from appliance.helper import libnft, nftset
from appliance.helper.libnft import NftError
from appliance.helper.protocol import MAX_LINE, ProtocolError, Request, encode_response, parse_request

log = logging.getLogger("sitzungsbox.helper")

CAP_NET_ADMIN = 12
CMD_TIMEOUT = 5.0
MAX_REQUESTS_PER_CONNECTION = 64


class ApplyError(RuntimeError):
    pass


def has_net_admin(proc_status: str) -> bool:
    """True if CapEff in /proc/<pid>/status includes CAP_NET_ADMIN."""
    for line in proc_status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    return False


def peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def web_user_ids(name: str) -> tuple[int, int] | None:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


class HelperServer:
    def __init__(self, cfg: Config, allowed_uids: set[int], nft: str = "nft", conntrack: str = "conntrack",
                 timeout: float = 2.0) -> None:
        self.cfg = cfg
        self.allowed_uids = set(allowed_uids)
        self.nft = nft
        self.conntrack = conntrack
        self.timeout = timeout
        self.network = cfg.network
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        # nft calls are serialised so the log order is the order of changes.
        self._apply_lock = threading.Lock()
        # The library where the plain `nft` is meant; a path to another binary (tests) keeps the subprocess.
        self._libnft = libnft.load() if nft == "nft" else None

    # -- socket ---------------------------------------------------------------------------------
    def bind(self) -> None:
        path = Path(self.cfg.helper_socket)
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise OSError(f"{path} existiert und ist kein Socket")
            path.unlink()  # stale socket from an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o117)  # no window in which the socket is world-connectable
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o660)
        ids = web_user_ids(self.cfg.web_user)
        if ids is not None:
            os.chown(path, -1, ids[1])
        sock.listen(16)
        self._sock = sock
        log.info("Helfer lauscht auf %s (erlaubte uids: %s)", path, sorted(self.allowed_uids))

    def serve_forever(self) -> None:
        if self._sock is None:
            self.bind()
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._stop.is_set():
                    break
                raise
            threading.Thread(target=self._handle_conn, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        if self._sock is not None:
            try:
                # Wakes a blocked accept() (EINVAL) on Linux.
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            try:
                Path(self.cfg.helper_socket).unlink()
            except OSError:
                pass

    def _handle_conn(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(self.timeout)
            try:
                uid = peer_uid(conn)
                reader = conn.makefile("rb")
                if uid not in self.allowed_uids:
                    log.warning("Verbindung von uid %d abgewiesen", uid)
                    self._refuse(conn, reader)
                    return
                for _ in range(MAX_REQUESTS_PER_CONNECTION):
                    line = reader.readline(MAX_LINE + 1)
                    if not line:
                        return
                    too_long = not line.endswith(b"\n") and len(line) > MAX_LINE
                    conn.sendall(self.handle_line(line, uid))
                    if too_long:
                        return  # the rest of that line is garbage; do not try to resync
            except (OSError, TimeoutError) as exc:
                log.debug("Verbindung beendet: %s", exc)

    def _refuse(self, conn: socket.socket, reader: io.BufferedIOBase) -> None:
        """Answer a refused peer after reading its request line, never before: a Unix socket closed before
        the peer has written makes that write fail (EPIPE), and the client would report "helper unreachable"
        instead of the refusal, depending on timing. A peer that sends nothing gets the answer after the
        timeout."""
        try:
            reader.readline(MAX_LINE + 1)
        except (OSError, TimeoutError):
            pass
        conn.sendall(encode_response("nicht erlaubt"))

    # -- requests -------------------------------------------------------------------------------
    def handle_line(self, line: bytes, uid: int) -> bytes:
        try:
            req = parse_request(line, self.network, self.cfg.address)
        except ProtocolError as exc:
            log.warning("Anfrage von uid %d abgewiesen: %s", uid, exc)
            return encode_response(str(exc))
        try:
            self.apply(req)
        except ApplyError as exc:
            log.error("%s %s %s fehlgeschlagen: %s", req.op, req.mac, req.ip, exc)
            return encode_response(str(exc))
        log.info("%s %s %s (uid %d)", req.op, req.mac, req.ip, uid)
        return encode_response(None)

    def apply(self, req: Request) -> None:
        table = self.cfg.nft_table
        with self._apply_lock:
            if req.op == "admit":
                # `add element` of an existing element succeeds: admit is idempotent.
                self._run(nftset.element_argv(self.nft, "add", table, req.mac, req.ip))
                return
            try:
                self._run(nftset.element_argv(self.nft, "delete", table, req.mac, req.ip))
            except ApplyError:
                # Deleting a missing element fails with ENOENT, as does a missing table. If the set
                # itself is there, the element simply was not admitted: not an error.
                self._run(nftset.list_set_argv(self.nft, table))
                log.info("revoke %s %s: war nicht freigegeben", req.mac, req.ip)
            self._flush_conntrack(req.ip)

    def _run(self, argv: list[str]) -> None:
        if self._libnft is not None and argv[0] == self.nft:
            # Same words as the nft command line, run in-process (see libnft.py for why).
            try:
                self._libnft.run(" ".join(argv[1:]))
            except NftError as exc:
                raise ApplyError(f"nft: {exc}") from exc
            return
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=CMD_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ApplyError(f"{argv[0]}: {exc}") from exc
        if res.returncode != 0:
            msg = (res.stderr.strip().splitlines() or [f"Rückgabewert {res.returncode}"])[0]
            raise ApplyError(f"nft: {msg}")

    def _flush_conntrack(self, ip: str) -> None:
        try:
            res = subprocess.run(nftset.conntrack_argv(self.conntrack, ip), capture_output=True, text=True,
                                 timeout=CMD_TIMEOUT, check=False)
        except FileNotFoundError:
            log.warning("conntrack fehlt: bestehende Verbindungen von %s bleiben bis zum Timeout", ip)
            return
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("conntrack -D -s %s: %s", ip, exc)
            return
        out = (res.stderr + res.stdout).strip()
        # rc=1 with "0 flow entries have been deleted." just means there was nothing to drop.
        if res.returncode != 0 and "0 flow entries" not in out:
            log.warning("conntrack -D -s %s: %s", ip, out)
        else:
            log.info("conntrack -D -s %s: %s", ip, out or "ok")


def _sd_notify(message: str) -> None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(message.encode(), addr)
        except OSError:
            pass


def main(cfg: Config) -> int:
    """`sitzungsbox helper`: run until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    if not has_net_admin(status):
        print("Der Helfer braucht root bzw. die Fähigkeit CAP_NET_ADMIN, um die Firewall zu ändern. "
              "Bitte als Dienst (systemd) oder mit sudo starten; ohne Firewall läuft die Box nur im Demo-Modus.",
              file=sys.stderr)
        return 1
    allowed = {0}
    ids = web_user_ids(cfg.web_user)
    if ids is not None:
        allowed.add(ids[0])
    else:
        log.warning("Benutzer %s fehlt: nur root darf den Helfer benutzen", cfg.web_user)
    server = HelperServer(cfg, allowed)
    try:
        server.bind()
    except OSError as exc:
        print(f"Helfer-Socket {cfg.helper_socket} lässt sich nicht anlegen: {exc}", file=sys.stderr)
        return 1

    def _stop(_signum: int, _frame: object) -> None:
        server.close()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    _sd_notify("READY=1")
    try:
        server.serve_forever()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    from appliance import config as config_mod

    sys.exit(main(config_mod.load()))
