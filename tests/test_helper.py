"""The firewall helper: pure request validation, and the real server in a throwaway network namespace."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from appliance.config import Config
from appliance.helper import nftset
from appliance.helper.client import HelperClient, HelperError, NullHelper
from appliance.helper.protocol import ProtocolError, encode_response, parse_request, parse_response
from appliance.helper.server import has_net_admin
from tests.conftest import ROOT, need_binary, need_root

NET = ipaddress.IPv4Network("10.77.0.0/23")
BOX = "10.77.0.1"


def req(**kw: object) -> bytes:
    body = {"op": "admit", "mac": "02:00:00:00:00:17", "ip": "10.77.0.23"}
    body.update(kw)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode() + b"\n"


@pytest.mark.parametrize(
    "line, op, mac, ip",
    [
        (req(), "admit", "02:00:00:00:00:17", "10.77.0.23"),
        (req(op="revoke"), "revoke", "02:00:00:00:00:17", "10.77.0.23"),
        (req(mac="AA:BB:CC:DD:EE:F0"), "admit", "aa:bb:cc:dd:ee:f0", "10.77.0.23"),  # lowercased
        (req(ip="10.77.1.254"), "admit", "02:00:00:00:00:17", "10.77.1.254"),  # upper half of the /23
        (req().rstrip(b"\n"), "admit", "02:00:00:00:00:17", "10.77.0.23"),  # newline optional
    ],
)
def test_good_requests(line: bytes, op: str, mac: str, ip: str) -> None:
    r = parse_request(line, NET, BOX)
    assert (r.op, r.mac, r.ip) == (op, mac, ip)


@pytest.mark.parametrize(
    "line, why",
    [
        (b"admit 02:00:00:00:00:17 10.77.0.23\n", "not JSON"),
        (b"\xff\xfe{}\n", "not UTF-8"),
        (b"[1, 2]\n", "not an object"),
        (req(op="flush"), "unknown op"),
        (req(op="ADMIT"), "op is case-sensitive"),
        (req(table="filter"), "extra key"),
        (req(set="other"), "set name from the client"),
        (req(ip=...), "missing key"),
        (req(mac="02:00:00:00:00"), "5 octets"),
        (req(mac="02-00-00-00-00-17"), "dashes"),
        (req(mac="0200.0000.0017"), "cisco form"),
        (req(mac="02:00:00:00:00:1g"), "not hex"),
        (req(mac="ff:ff:ff:ff:ff:ff"), "broadcast"),
        (req(mac="01:00:5e:00:00:fb"), "multicast"),
        (req(mac="00:00:00:00:00:00"), "all zero"),
        (req(mac=2), "mac not a string"),
        (req(ip="10.78.0.5"), "outside the client network"),
        (req(ip="10.77.0.0"), "network address"),
        (req(ip="10.77.1.255"), "broadcast address"),
        (req(ip=BOX), "box address"),
        (req(ip="10.77.0.023"), "leading zero"),
        (req(ip="10.77.0.23; drop"), "shell-ish"),
        (req(ip="fe80::1"), "IPv6"),
        (req(ip=None), "ip null"),
        (b'{"op":"admit","mac":"02:00:00:00:00:17","ip":"10.77.0.23","pad":"' + b"x" * 250 + b'"}\n', "too long"),
    ],
)
def test_bad_requests(line: bytes, why: str) -> None:
    with pytest.raises(ProtocolError):
        parse_request(line, NET, BOX)


def test_length_limit_counts_without_newline() -> None:
    base = req().rstrip(b"\n")
    line = base[:-1] + b" " * (256 - len(base)) + b"}"
    assert len(line) == 256
    assert parse_request(line + b"\n", NET, BOX).op == "admit"
    with pytest.raises(ProtocolError):
        parse_request(line[:-1] + b" }", NET, BOX)


def test_response_roundtrip() -> None:
    assert parse_response(encode_response(None)) is None
    assert parse_response(encode_response("ungültige MAC-Adresse")) == "ungültige MAC-Adresse"
    assert parse_response(b"garbage\n") == "unlesbare Antwort vom Helfer"
    assert parse_response(b'{"ok": "yes"}\n') == "unlesbare Antwort vom Helfer"


def test_cap_net_admin_from_proc_status() -> None:
    assert has_net_admin("Name:\tx\nCapEff:\t0000000000001000\n")
    assert has_net_admin("CapEff:\t000001ffffffffff\n")
    assert not has_net_admin("CapEff:\t0000000000000000\n")
    assert not has_net_admin("Name:\tx\n")


def test_element_argv_is_argv_not_shell_text() -> None:
    argv = nftset.element_argv("nft", "add", "sitzungsbox", "02:00:00:00:00:17", "10.77.0.23")
    assert argv == ["nft", "add", "element", "inet", "sitzungsbox", "admitted", "{", "02:00:00:00:00:17 . 10.77.0.23",
                    "}"]
    with pytest.raises(ValueError):
        nftset.element_argv("nft", "flush", "t", "02:00:00:00:00:17", "10.77.0.23")


def test_parse_set_elements_recorded_output() -> None:
    # Recorded from nft 1.0.6 (`nft -j list set inet t admitted`), one element, then empty.
    one = ('{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", '
           '"json_schema_version": 1}}, {"set": {"family": "inet", "name": "admitted", "table": "t", '
           '"type": ["ether_addr", "ipv4_addr"], "handle": 1, "elem": [{"concat": ["02:00:00:00:00:01", '
           '"10.77.0.5"]}]}}]}')
    empty = ('{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", '
             '"json_schema_version": 1}}, {"set": {"family": "inet", "name": "admitted", "table": "t", '
             '"type": ["ether_addr", "ipv4_addr"], "handle": 1}}]}')
    assert nftset.parse_set_elements(one) == {("02:00:00:00:00:01", "10.77.0.5")}
    assert nftset.parse_set_elements(empty) == set()


def test_null_helper_records_and_changes_nothing() -> None:
    h = NullHelper()
    h.admit("02:00:00:00:00:17", "10.77.0.23")
    h.revoke("02:00:00:00:00:17", "10.77.0.23")
    assert h.calls == [("admit", "02:00:00:00:00:17", "10.77.0.23"), ("revoke", "02:00:00:00:00:17", "10.77.0.23")]
    assert h.admitted == set()


def test_client_reports_missing_helper(tmp_path: Path) -> None:
    with pytest.raises(HelperError, match="nicht erreichbar"):
        HelperClient(tmp_path / "nope.sock", timeout=0.5).admit("02:00:00:00:00:17", "10.77.0.23")


# --- the real server, inside a throwaway network namespace -----------------------------------------------

TABLE = "sbxhtest"
RULESET = f"""table inet {TABLE} {{
  set admitted {{ type ether_addr . ipv4_addr; }}
}}
"""


def _wait_for_socket(proc: subprocess.Popen, sock: Path, timeout: float) -> None:
    """Poll with a deadline; waiting on the process doubles as the poll interval and notices a crash."""
    deadline = time.monotonic() + timeout
    while not sock.exists() and time.monotonic() < deadline:
        try:
            proc.wait(0.02)
            return  # it exited: the caller reports the log
        except subprocess.TimeoutExpired:
            pass


class NsHelper:
    def __init__(self, ns: str, sock: Path, log: Path) -> None:
        self.ns, self.sock, self.log = ns, sock, log

    def nft(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns, "nft", *args], capture_output=True, text=True,
                              timeout=10, check=True)

    def elements(self) -> set[tuple[str, str]]:
        return nftset.parse_set_elements(self.nft(*nftset.list_set_argv("nft", TABLE, json_output=True)[1:]).stdout)

    def raw(self, line: bytes) -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            s.connect(str(self.sock))
            s.sendall(line)
            return s.makefile("rb").readline()


@pytest.fixture(scope="module")
def ns_helper():
    need_root()
    need_binary("ip", "nft", "conntrack")
    ns = f"sbxd-h-{os.getpid()}"
    # Not under pytest's tmp dir (mode 0700): the uid test needs a path `nobody` can traverse.
    work = Path(tempfile.mkdtemp(prefix="sbxd-h-"))
    work.chmod(0o755)
    sock = work / "run" / "helper.sock"
    conf = work / "sitzungsbox.toml"
    conf.write_text(f'state_dir = "{work}/state"\nrun_dir = "{work}/run"\nnft_table = "{TABLE}"\n'
                    f'web_user = "sbx-no-such-user"\n')
    log = work / "helper.log"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    proc = None
    try:
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=RULESET, text=True, check=True, timeout=10)
        with open(log, "wb") as fh:
            # The server runs inside the namespace, so the host's firewall is never touched.
            proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "appliance.cli", "--config",
                                     str(conf), "helper"], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        _wait_for_socket(proc, sock, 15)
        assert proc.poll() is None and sock.exists(), log.read_text()
        yield NsHelper(ns, sock, log)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def helper(ns_helper: NsHelper) -> NsHelper:
    ns_helper.nft("flush", "set", "inet", TABLE, "admitted")
    return ns_helper


MAC, IP = "02:00:00:00:00:17", "10.77.0.23"


def test_socket_mode_is_0660(helper: NsHelper) -> None:
    assert stat.S_IMODE(helper.sock.stat().st_mode) == 0o660


def test_admit_and_revoke_change_the_set(helper: NsHelper) -> None:
    client = HelperClient(helper.sock)
    client.admit(MAC.upper(), IP)
    assert helper.elements() == {(MAC, IP)}
    client.admit(MAC, IP)  # idempotent
    client.admit("02:00:00:00:00:18", "10.77.1.7")
    assert helper.elements() == {(MAC, IP), ("02:00:00:00:00:18", "10.77.1.7")}
    client.revoke(MAC, IP)
    assert helper.elements() == {("02:00:00:00:00:18", "10.77.1.7")}
    client.revoke(MAC, IP)  # revoking a missing element is not an error
    assert helper.elements() == {("02:00:00:00:00:18", "10.77.1.7")}
    log = helper.log.read_text()
    assert f"admit {MAC} {IP} (uid 0)" in log
    assert f"revoke {MAC} {IP} (uid 0)" in log


@pytest.mark.parametrize("line", [
    b"nft flush ruleset\n",
    req(op="flush"),
    req(table="filter"),
    req(mac="ff:ff:ff:ff:ff:ff"),
    req(ip="10.78.0.5"),
    req(ip=BOX),
    b'{"op":"admit","mac":"02:00:00:00:00:17","ip":"10.77.0.23","x":"' + b"y" * 400 + b'"}\n',
])
def test_bad_requests_are_refused_and_change_nothing(helper: NsHelper, line: bytes) -> None:
    HelperClient(helper.sock).admit(MAC, IP)
    before = helper.elements()
    answer = json.loads(helper.raw(line))
    assert answer["ok"] is False and answer["error"]
    assert helper.elements() == before == {(MAC, IP)}
    assert helper.nft("list", "table", "inet", TABLE).returncode == 0


def test_client_raises_with_server_message(helper: NsHelper) -> None:
    with pytest.raises(HelperError, match="Broadcast"):
        HelperClient(helper.sock).admit(MAC, str(Config().network.broadcast_address))
    assert helper.elements() == set()


_NOBODY_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(15)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES"); sys.exit(0)
s.sendall(b'{"op":"admit","mac":"02:00:00:00:00:17","ip":"10.77.0.23"}\\n')
print(s.makefile("rb").readline().decode().strip())
"""


def _as_nobody(sock: Path) -> str:
    res = subprocess.run(["/usr/bin/python3", "-I", "-c", _NOBODY_CLIENT, str(sock)], user=65534, group=65534,
                         extra_groups=[], capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 0, res.stderr  # show why, e.g. a timeout on a machine under load
    return res.stdout.strip()


def test_uid_not_allowed_is_refused(helper: NsHelper) -> None:
    # With the socket's 0660 mode `nobody` cannot even connect ...
    assert _as_nobody(helper.sock) == "EACCES"
    # ... and if the file mode were wrong, SO_PEERCRED still refuses it.
    helper.sock.chmod(0o666)
    try:
        answer = json.loads(_as_nobody(helper.sock))
    finally:
        helper.sock.chmod(0o660)
    assert answer == {"ok": False, "error": "nicht erlaubt"}
    assert helper.elements() == set()
    assert "uid 65534 abgewiesen" in helper.log.read_text()


def test_refusal_waits_for_the_request_line(tmp_path: Path) -> None:
    """No root needed: a server that allows no uid at all. The client writes late, as a loaded machine may;
    it must still read the refusal (a server that answered and closed at once made this write fail with EPIPE)."""
    import threading

    from appliance.helper.server import HelperServer

    cfg = Config(run_dir=tmp_path, helper_socket=tmp_path / "helper.sock")
    server = HelperServer(cfg, allowed_uids=set(), nft="/bin/false", timeout=5)
    server.bind()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(cfg.helper_socket))
            time.sleep(0.3)  # the old server had answered and closed by now
            s.sendall(req())
            assert json.loads(s.makefile("rb").readline()) == {"ok": False, "error": "nicht erlaubt"}
        with pytest.raises(HelperError, match="nicht erlaubt"):
            HelperClient(cfg.helper_socket).admit(MAC, IP)
    finally:
        server.close()
        thread.join(5)
