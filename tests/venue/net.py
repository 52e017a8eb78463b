"""The virtual venue's network: the box and its clients in network namespaces (root only).

A test harness, not part of the product (it is not in the package or the card image): used by `make venue`,
the network tests and bench/, through tests/venue/box.py for the whole appliance. Topology (nothing is linked
to the host's namespace):

    <prefix>cN: eth0 (02:00:00:00:XX:XX)  <->  vcN  [bridge wlan0, box address]  in <prefix>box

The bridge is called `wlan0` so the appliance's rendered dnsmasq/nftables configs apply unchanged.
Every process the venue starts is tracked by PID and killed on `down()`; clients resolve through
/etc/netns/<ns>/resolv.conf, written by our own udhcpc hook, never through the host's /etc/resolv.conf.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from appliance.config import Config, to_toml

NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")
BRIDGE = "wlan0"
PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,7}$")
MAX_CLIENTS = 4000  # vc<N> must fit into 15 characters; the address plan is the real limit
CMD_TIMEOUT = 30.0
REPO = Path(__file__).resolve().parents[2]  # the checkout: processes in the box import appliance from it
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# udhcpc hook. It refuses to run unless it is inside the named namespace it was started for, so it can never
# rewrite the host's /etc/resolv.conf (Debian's default hooks would). It records the lease for the venue.
# Few forks on purpose: in a burst of 200 clients on 2 cores the hooks, not dnsmasq, were the bottleneck.
# `test -ef` compares device and inode, exactly what `ip netns identify` does; the lease time is the
# record file's mtime (dash has no clock builtin, `date` would cost a fork).
UDHCPC_HOOK = r"""#!/bin/sh
ns="${SBX_NS:-$(ip netns identify "$$" 2>/dev/null)}"
if [ -z "$ns" ] || ! [ /proc/$$/ns/net -ef "/run/netns/$ns" ]; then
    echo "venue-udhcpc-hook: nicht im eigenen benannten Netzwerk-Namespace, breche ab" >&2
    exit 1
fi
out="$SBX_LEASE_DIR/$ns.lease"
case "$1" in
    deconfig)
        # Only after a lease (its record exists) is there an address to drop; a phone that just joined has
        # none, and skipping the `ip` spawn then keeps a 200-phone burst from queueing on the CPU.
        [ -e "$out" ] || exit 0
        ip -batch - <<EOF
addr flush dev $interface scope global
link set $interface up
EOF
        ;;
    bound|renew)
        set -- $router
        ip -batch - <<EOF
addr flush dev $interface scope global
addr add $ip/${mask:-$subnet} dev $interface
${1:+route replace default via $1 dev $interface}
EOF
        [ -d "/etc/netns/$ns" ] || mkdir -p "/etc/netns/$ns"
        for d in $dns; do echo "nameserver $d"; done > "/etc/netns/$ns/resolv.conf"
        printf 'ip=%s\nmask=%s\nrouter=%s\ndns=%s\nlease=%s\nopt114=%s\nserverid=%s\n' \
            "$ip" "${mask:-$subnet}" "$router" "$dns" "$lease" "$opt114" "$serverid" > "$out"
        ;;
    leasefail|nak)
        echo "$1" > "$out.fail"
        ;;
esac
exit 0
"""


def _accepts(path: Path) -> bool:
    """Does a Unix stream socket at path take a connection now?"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
        return True


class VenueError(RuntimeError):
    pass


@dataclass(frozen=True)
class Lease:
    ns: str
    ip: str
    mask: str
    router: str
    dns: tuple[str, ...]
    lease_seconds: int
    captive_url: str  # DHCP option 114, decoded; empty if not offered
    at: float  # wall-clock time the hook wrote the lease (time.time() scale)


@dataclass
class HttpResponse:
    status: int  # 0: no HTTP answer at all (refused, timeout, DNS failure)
    headers: dict[str, str]  # lowercased names; a repeated header keeps the last value
    body: bytes
    error: str = ""

    def __iter__(self):  # (status, headers, body) = venue.http(...)
        return iter((self.status, self.headers, self.body))

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def client_mac(i: int, randomised: bool = False) -> str:
    """Deterministic, locally administered unicast MAC for client i.

    randomised: spread like the per-network random MACs of real phones. Sequential MACs hash to
    neighbouring addresses in dnsmasq's allocator; in a burst after an earlier burst, those clients all
    probe forward to the same free address and lose the race to each other (DHCPNAK "address in use").
    """
    if randomised:
        digest = hashlib.sha256(f"sitzungsbox-venue-{i}".encode()).digest()
        return "02:" + ":".join(f"{b:02x}" for b in digest[:5])
    return f"02:00:00:00:{(i >> 8) & 0xff:02x}:{i & 0xff:02x}"


def parse_lease_record(ns: str, text: str) -> Lease:
    kv = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    opt114 = kv.get("opt114", "").strip()
    try:
        # udhcpc hands unknown options to the hook as hex.
        captive = bytes.fromhex(opt114).decode("utf-8", "replace") if opt114 else ""
    except ValueError:
        captive = opt114
    return Lease(ns=ns, ip=kv.get("ip", ""), mask=kv.get("mask", ""), router=kv.get("router", "").split(" ")[0],
                 dns=tuple(kv.get("dns", "").split()), lease_seconds=int(kv.get("lease") or 0),
                 captive_url=captive, at=float(kv.get("t") or 0))


def parse_curl_include(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Split `curl -i` output into status, headers and body. Skips interim `100 Continue` blocks."""
    rest = raw
    while True:
        head, sep, body = rest.partition(b"\r\n\r\n")
        if not sep:
            head, body = rest, b""
        lines = head.decode("iso-8859-1").split("\r\n")
        m = re.match(r"HTTP/\S+ (\d{3})", lines[0])
        if not m:
            return 0, {}, raw
        status = int(m.group(1))
        if 100 <= status < 200 and body:
            rest = body
            continue
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        return status, headers, body


def lease_file_of(conf_text: str) -> str | None:
    """The `dhcp-leasefile=` of a dnsmasq conf (last one wins, as in dnsmasq)."""
    found = None
    for line in conf_text.splitlines():
        m = re.match(r"\s*dhcp-leasefile\s*=\s*(\S+)", line)
        if m:
            found = m.group(1)
    return found


def config_toml(cfg: Config) -> str:
    """The Config as a TOML file, so processes started inside the box (helper, web) share the venue's cfg."""
    return to_toml(cfg)


def _run(argv: list[str], *, input: str | None = None, timeout: float = CMD_TIMEOUT,
         check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
    if check and res.returncode != 0:
        raise VenueError(f"{' '.join(argv[:6])} …: rc={res.returncode}: {res.stderr.strip()[-800:]}")
    return res


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen
    log: Path | None = None


@dataclass
class Venue:
    workdir: Path
    n_clients: int
    prefix: str = "sbx"
    cfg: Config = field(default_factory=Config)
    links_up: bool = True  # False: clients are created unplugged (bench: arrival burst)
    random_macs: bool = False  # True: MACs spread like phones' random ones (see client_mac)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        if not PREFIX_RE.match(self.prefix):
            raise VenueError(f"ungültiges Präfix {self.prefix!r} (a-z, 0-9, -, höchstens 8 Zeichen)")
        if not 0 <= self.n_clients <= MAX_CLIENTS:
            raise VenueError(f"Anzahl Clients {self.n_clients} außerhalb 0..{MAX_CLIENTS}")
        self.box_ns = f"{self.prefix}box"
        self._procs: list[_Proc] = []
        self._lock = threading.Lock()
        self._leases: dict[int, Lease] = {}
        self._nft_count = 0
        self.lease_dir = self.workdir / "leases"
        self.log_dir = self.workdir / "logs"
        self.hook = self.workdir / "udhcpc-hook.sh"
        self.dnsmasq_lease_files: dict[str, Path] = {}

    # -- names ------------------------------------------------------------------------------------
    def client_ns(self, i: int) -> str:
        self._check_index(i)
        return f"{self.prefix}c{i}"

    def port(self, i: int) -> str:
        """The client's veth port on the box bridge."""
        self._check_index(i)
        return f"vc{i}"

    def client_mac(self, i: int) -> str:
        self._check_index(i)
        return client_mac(i, self.random_macs)

    def client_ip(self, i: int) -> str:
        lease = self._leases.get(i) or self._read_lease(i)
        if lease is None:
            raise VenueError(f"Client {i} hat keine Adresse (erst dhcp({i}) aufrufen)")
        return lease.ip

    @property
    def indices(self) -> range:
        return range(1, self.n_clients + 1)

    def namespaces(self) -> list[str]:
        return [self.box_ns, *(self.client_ns(i) for i in self.indices)]

    def _check_index(self, i: int) -> None:
        if not 1 <= i <= self.n_clients:
            raise VenueError(f"Client {i} gibt es nicht (1..{self.n_clients})")

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> Venue:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> Venue:
        if os.geteuid() != 0:
            raise VenueError("der virtuelle Sitzungssaal braucht root (Netzwerk-Namespaces)")
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        return self

    def _build(self) -> None:
        for d in (self.workdir, self.lease_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.hook.write_text(UDHCPC_HOOK)
        self.hook.chmod(0o755)
        # Leftovers of a crashed run with the same names would make `netns add` fail: clear them first.
        stale = [ns for ns in self.namespaces() if (NETNS_DIR / ns).exists()]
        if stale:
            self._delete_namespaces(stale)
        iface = ipaddress.IPv4Interface(f"{self.cfg.address}/{self.cfg.prefix}")
        # One `ip -batch` for all namespaces and veth pairs; both ends are created directly inside their
        # namespaces, so no interface ever appears in the host's namespace (nor can clash with one).
        root = [f"netns add {ns}" for ns in self.namespaces()]
        root += [f"link add {self.port(i)} netns {self.box_ns} type veth peer name eth0 netns {self.client_ns(i)} "
                 f"address {self.client_mac(i)}" for i in self.indices]
        _run(["ip", "-batch", "-"], input="\n".join(root) + "\n", timeout=CMD_TIMEOUT + self.n_clients * 0.1)
        # STP off and forward_delay 0: a port forwards as soon as it is up, like an AP's station.
        box = ["link set lo up", f"link add {BRIDGE} type bridge stp_state 0 forward_delay 0",
               f"addr add {iface.with_prefixlen} dev {BRIDGE}", f"link set {BRIDGE} up"]
        for i in self.indices:
            box.append(f"link set {self.port(i)} master {BRIDGE}")
            if self.links_up:
                box.append(f"link set {self.port(i)} up")
        _run(["ip", "-n", self.box_ns, "-batch", "-"], input="\n".join(box) + "\n")
        for i in self.indices:
            (ETC_NETNS / self.client_ns(i)).mkdir(parents=True, exist_ok=True)
            # The client's own side is always up; "plugged in" is the carrier from the box port.
            _run(["ip", "-n", self.client_ns(i), "-batch", "-"], input="link set lo up\nlink set eth0 up\n")

    def down(self) -> None:
        """Kill every process we started (by PID) and delete our namespaces. Idempotent."""
        with self._lock:
            procs, self._procs = self._procs, []
        for p in procs:
            self._stop(p.popen)
        existing = [ns for ns in self.namespaces() if (NETNS_DIR / ns).exists()]
        # Children of our processes may still sit in our namespaces (e.g. a hook): kill those by PID too.
        for ns in existing:
            res = _run(["ip", "netns", "pids", ns], check=False)
            for pid in res.stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        if existing:
            self._delete_namespaces(existing)
        for ns in self.namespaces():
            shutil.rmtree(ETC_NETNS / ns, ignore_errors=True)
        self._leases.clear()

    def _delete_namespaces(self, names: list[str]) -> None:
        _run(["ip", "-force", "-batch", "-"], input="".join(f"netns del {ns}\n" for ns in names), check=False,
             timeout=CMD_TIMEOUT + len(names) * 0.1)
        left = [ns for ns in names if (NETNS_DIR / ns).exists()]
        if left:
            raise VenueError(f"Namespaces ließen sich nicht löschen: {', '.join(left)}")

    @staticmethod
    def _stop(p: subprocess.Popen, grace: float = 3.0) -> None:
        if p.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            p.terminate()
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait(grace)

    def stop(self, proc: subprocess.Popen) -> None:
        """Stop one process started by this venue (e.g. to restart dnsmasq with a new config)."""
        self._stop(proc)
        with self._lock:
            self._procs = [p for p in self._procs if p.popen is not proc]

    def _track(self, name: str, popen: subprocess.Popen, log: Path | None) -> subprocess.Popen:
        with self._lock:
            self._procs.append(_Proc(name, popen, log))
        return popen

    def processes(self) -> list[tuple[str, int, bool]]:
        """(name, pid, running) for every process we started and not yet stopped."""
        with self._lock:
            return [(p.name, p.popen.pid, p.popen.poll() is None) for p in self._procs]

    # -- box ----------------------------------------------------------------------------------------
    def box_exec(self, argv: list[str], timeout: float = 10, input: str | None = None,
                 check: bool = False) -> subprocess.CompletedProcess:
        return _run(["ip", "netns", "exec", self.box_ns, *argv], input=input, timeout=timeout, check=check)

    def run_in_box(self, argv: list[str], user: str | None = None, env: dict[str, str] | None = None,
                   name: str | None = None, cwd: Path | str | None = None,
                   caps: tuple[str, ...] = ()) -> subprocess.Popen:
        """Start a long-running process in the box namespace; output goes to logs/<name>.log.

        `user`: drop to that account (setpriv: uid, gid, its groups, no capabilities) — the web app must
        never run as root. `ip netns exec` and setpriv both exec, so the PID is the process itself.
        """
        name = name or Path(argv[0]).name
        log = self.log_dir / f"{name}.log"
        full_env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "HOME": "/"}
        full_env.update(env or {})
        prefix = ["ip", "netns", "exec", self.box_ns]
        if user is not None:
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                raise VenueError(f"Benutzer {user} gibt es nicht") from None
            # caps: ambient capabilities the unit file grants (e.g. net_raw for the daemon's ARP probes).
            keep = "".join(f",+{c}" for c in caps)
            prefix += ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups",
                       f"--inh-caps=-all{keep}", *([f"--ambient-caps=-all{keep}"] if caps else []),
                       f"--bounding-set=-all{keep}", "--"]
            full_env["HOME"] = pw.pw_dir if os.path.isdir(pw.pw_dir) else "/"
        with open(log, "ab") as fh:
            popen = subprocess.Popen([*prefix, *argv], stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=full_env, cwd=cwd)
        return self._track(name, popen, log)

    def start_dnsmasq(self, conf_text: str, name: str = "dnsmasq", extra_args: tuple[str, ...] = ("--no-ping",),
                      timeout: float = 10) -> subprocess.Popen:
        """Run Debian's dnsmasq with this config in the box, in the foreground, with its own pid file.

        `--no-ping` by default: dnsmasq's ping check holds every offer ~3 s (VENUE-NOTES). The lease file is
        the conf's `dhcp-leasefile=`; without one we set one in the workdir (never the host's default).
        """
        conf = self.workdir / f"{name}.conf"
        conf.write_text(conf_text)
        pid_file = self.workdir / f"{name}.pid"
        pid_file.unlink(missing_ok=True)
        args = ["dnsmasq", "--keep-in-foreground", f"--conf-file={conf}", f"--pid-file={pid_file}", *extra_args]
        lease = lease_file_of(conf_text)
        if lease is None:
            lease_path = self.workdir / f"{name}.leases"
            args.append(f"--dhcp-leasefile={lease_path}")
        else:
            lease_path = Path(lease)
        lease_path.parent.mkdir(parents=True, exist_ok=True)
        self.dnsmasq_lease_files[name] = lease_path
        if not re.search(r"^\s*log-facility\s*=", conf_text, re.M):
            args.append(f"--log-facility={self.log_dir / (name + '.log')}")
        proc = self.run_in_box(args, name=f"{name}-stdout")
        # Ready once it holds its sockets. Not the pid file: the appliance's conf sets `pid-file=` (none),
        # and a conf-file option overrides ours.
        deadline = time.monotonic() + timeout
        while f"pid={proc.pid}," not in self.box_exec(["ss", "-Hlnup"], timeout=5).stdout:
            if proc.poll() is not None:
                raise VenueError(f"dnsmasq beendet (rc={proc.returncode}): {self._log_tail(name)}")
            if time.monotonic() > deadline:
                raise VenueError(f"dnsmasq startet nicht: {self._log_tail(name)}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.02)
        return proc

    def _log_tail(self, name: str) -> str:
        texts = []
        for f in (self.log_dir / f"{name}.log", self.log_dir / f"{name}-stdout.log"):
            if f.exists():
                texts.append(f.read_text(errors="replace")[-600:])
        return " | ".join(texts)

    def load_nft(self, ruleset_text: str) -> Path:
        """`nft -f` in the box namespace; raises VenueError with nft's message on a bad ruleset."""
        self._nft_count += 1
        path = self.workdir / f"ruleset-{self._nft_count}.nft"
        path.write_text(ruleset_text)
        res = self.box_exec(["nft", "-f", str(path)], timeout=15)
        if res.returncode != 0:
            raise VenueError(f"nft -f {path}: {res.stderr.strip()}")
        return path

    def nft_set(self, table: str | None = None, set_name: str = "admitted") -> set[tuple[str, str]]:
        """Elements of an `ether_addr . ipv4_addr` set in the box, as (mac, ip) pairs."""
        from appliance.helper.nftset import parse_set_elements

        res = self.box_exec(["nft", "-j", "list", "set", "inet", table or self.cfg.nft_table, set_name], check=True)
        return parse_set_elements(res.stdout)

    def wait_listening(self, port: int, timeout: float = 10, proc: subprocess.Popen | None = None) -> None:
        """Poll until something in the box listens on TCP `port`; fail early if `proc` dies."""
        deadline = time.monotonic() + timeout
        while True:
            res = self.box_exec(["ss", "-Hltn", f"sport = :{port}"], timeout=5)
            if res.stdout.strip():
                return
            if proc is not None and proc.poll() is not None:
                raise VenueError(f"Prozess {proc.pid} beendet (rc={proc.returncode}) bevor Port {port} offen war")
            if time.monotonic() > deadline:
                raise VenueError(f"niemand lauscht nach {timeout} s auf Port {port}")
            time.sleep(0.02)

    def write_config(self) -> Path:
        """Write the venue's cfg as TOML (workdir/sitzungsbox.toml) for `sitzungsbox --config …`."""
        path = self.workdir / "sitzungsbox.toml"
        path.write_text(config_toml(self.cfg))
        return path

    def start_helper(self, timeout: float = 15) -> subprocess.Popen:
        """The real firewall helper (`sitzungsbox helper`) inside the box, on cfg.helper_socket."""
        sock = Path(self.cfg.helper_socket)
        sock.unlink(missing_ok=True)
        proc = self.run_in_box([sys.executable, "-m", "appliance.cli", "--config", str(self.write_config()), "helper"],
                               name="helper", env={"PYTHONPATH": str(REPO)})
        deadline = time.monotonic() + timeout
        while not _accepts(sock):  # the file exists from bind(); connections only from listen()
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop(proc)
                raise VenueError(f"Helfer startet nicht: {self._log_tail('helper')}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.02)
        return proc

    def set_links(self, indices: list[int] | range, up: bool) -> None:
        """Plug clients in or out (carrier of their box port), all in one `ip -batch`."""
        state = "up" if up else "down"
        lines = "".join(f"link set {self.port(i)} {state}\n" for i in indices)
        if lines:
            _run(["ip", "-n", self.box_ns, "-batch", "-"], input=lines)

    def link_down(self, i: int) -> None:
        self.set_links([i], up=False)

    def link_up(self, i: int) -> None:
        self.set_links([i], up=True)

    # -- clients ------------------------------------------------------------------------------------
    def client_exec(self, i: int, argv: list[str], timeout: float = 10, input: str | None = None,
                    env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        full_env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "HOME": "/"}
        full_env.update(env or {})
        return subprocess.run(["ip", "netns", "exec", self.client_ns(i), *argv], input=input, capture_output=True,
                              text=True, timeout=timeout, env=full_env, check=False)

    def dhcp_start(self, i: int, timeout: float = 10, gated: bool = False) -> subprocess.Popen:
        """Start udhcpc for client i (returns at once); finish with dhcp_wait().

        gated: udhcpc is spawned but waits for dhcp_release(); a burst of 200 can then be released within
        milliseconds instead of paying 200 × `ip netns exec` on the critical path.
        """
        ns = self.client_ns(i)
        for f in (self.lease_dir / f"{ns}.lease", self.lease_dir / f"{ns}.lease.fail"):
            f.unlink(missing_ok=True)
        self._leases.pop(i, None)
        tries = max(1, int(timeout))
        argv = ["ip", "netns", "exec", ns, "busybox", "udhcpc", "-q", "-n", "-f", "-i", "eth0", "-t", str(tries),
                "-T", "1", "-O", "114", "-s", str(self.hook)]
        env = {"PATH": SAFE_PATH, "SBX_LEASE_DIR": str(self.lease_dir), "SBX_NS": ns}
        if gated:
            # Fixed script, arguments passed as "$@": nothing is interpolated into shell text.
            argv = [*argv[:4], "sh", "-c", 'read -r _go && exec "$@"', "udhcpc-gate", *argv[4:]]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.PIPE if gated else subprocess.DEVNULL, env=env)

    @staticmethod
    def dhcp_release(proc: subprocess.Popen) -> None:
        """Let a gated udhcpc (dhcp_start(gated=True)) go."""
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()

    def dhcp_wait(self, i: int, proc: subprocess.Popen, timeout: float = 15) -> Lease:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            raise VenueError(f"Client {i}: keine Adresse nach {timeout} s") from None
        lease = self._read_lease(i)
        if proc.returncode != 0 or lease is None:
            raise VenueError(f"Client {i}: udhcpc rc={proc.returncode}: {out.decode(errors='replace')[-400:]}")
        return lease

    def dhcp(self, i: int, timeout: float = 10) -> Lease:
        """Get a lease for client i with busybox udhcpc (-q: exit once leased)."""
        return self.dhcp_wait(i, self.dhcp_start(i, timeout), timeout + 5)

    def lease(self, i: int) -> Lease | None:
        """The last lease client i got (None before dhcp())."""
        return self._leases.get(i) or self._read_lease(i)

    def _read_lease(self, i: int) -> Lease | None:
        ns = self.client_ns(i)
        path = self.lease_dir / f"{ns}.lease"
        if not path.exists():
            return None
        st = path.stat()
        lease = replace(parse_lease_record(ns, path.read_text()), at=st.st_mtime_ns / 1e9)
        self._leases[i] = lease
        return lease

    def http(self, i: int, url: str, timeout: float = 15, method: str | None = None, data: bytes | str | None = None,
             headers: dict[str, str] | None = None) -> HttpResponse:
        """One HTTP request with curl from inside client i; redirects are not followed. The default timeout is
        generous (a first request on a loaded slow machine); tests that expect no answer pass their own."""
        argv = ["curl", "-sS", "-i", "--noproxy", "*", "--max-time", str(timeout),
                "--connect-timeout", str(min(timeout, 3))]
        if method:
            argv += ["-X", method]
        for k, v in (headers or {}).items():
            argv += ["-H", f"{k}: {v}"]
        if data is not None:
            argv += ["--data-binary", "@-"]
        argv.append(url)
        payload = data.encode() if isinstance(data, str) else data
        res = subprocess.run(["ip", "netns", "exec", self.client_ns(i), *argv], input=payload, capture_output=True,
                             timeout=timeout + 5, env={"PATH": SAFE_PATH, "LANG": "C"}, check=False)
        if res.returncode != 0 and not res.stdout:
            return HttpResponse(0, {}, b"", error=res.stderr.decode(errors="replace").strip())
        status, hdrs, body = parse_curl_include(res.stdout)
        return HttpResponse(status, hdrs, body, error=res.stderr.decode(errors="replace").strip())

    def resolv_conf(self, i: int) -> Path:
        return ETC_NETNS / self.client_ns(i) / "resolv.conf"
