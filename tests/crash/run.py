#!/usr/bin/env python3
"""Crash safety of r53's control plane, proven by killing it (issue 7, item 1).

What this proves: with several clients streaming change batches through the API, a SIGKILL at
a random moment never loses a change that r53 acknowledged (HTTP 200, INSYNC) and never leaves a
batch half-applied, on disk or in DNS answers. Over --kills rounds it:

  1. starts `r53 serve` on a data dir (the same one every round) and polls the API and DNS until
     they answer (no fixed sleeps);
  2. runs --clients threads that each send ChangeResourceRecordSets batches of 2 to 5 CREATEs of
     fresh TXT record sets; every set of a batch carries the batch's id and size in its name and
     value (s<i>.<batch>.<zone> TXT "crash:<batch>:<n>:<i>"), so a partial batch is visible;
  3. after a random 50 to 500 ms, SIGKILLs the server. Each batch is then acknowledged (200),
     rejected (an HTTP error: it must be absent), unsent (the connection was refused: absent) or
     in flight (sent, no answer: present or absent, but whole);
  4. restarts r53 on the same data dir and checks the whole zone through the API
     (ListResourceRecordSets, page by page, and the zone's ResourceRecordSetCount), a sample of
     the batches through DNS (UDP, TCP on truncation) and a sample of the acknowledged changes
     through GetChange:
       - every acknowledged batch is fully present, in the API and in DNS;
       - every batch with any set present has all of its sets (no half-applied batch);
       - nothing is present that no client sent;
       - an in-flight batch found present (or absent) after one restart stays so after every
         later one.
Finally it stops r53 with SIGTERM (it must exit 0), starts it once more and checks again.
It prints a summary and exits 1 on any violation (2 when the run itself could not be set up).

Run it against a binary you built (it builds nothing):

    cargo build --release
    python3 tests/crash/run.py --bin target/release/r53 --kills 20

CI runs `--kills 3` against the debug build. Python 3 (tested with 3.11), standard library only.
Options: --clients N (6), --seed S (printed, to replay the kill delays and batch sizes),
--keep (keep the data dir and the server log; they are kept anyway on failure).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

ZONE = "crash.r53.test."
API_PREFIX = "/2013-04-01"
READY_TIMEOUT_S = 60.0


class SetupError(Exception):
    """The run could not be carried out (not a durability violation)."""


# ---------------------------------------------------------------------------------------------
# A minimal DNS client (stdlib only).


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def read_name(buf: bytes, off: int) -> tuple[str, int]:
    """Reads a possibly compressed name at `off`; returns it and the offset after it."""
    labels: list[str] = []
    end = None
    jumps = 0
    while True:
        length = buf[off]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((length & 0x3F) << 8) | buf[off + 1]
            jumps += 1
            if jumps > 64:
                raise ValueError("compression loop")
            continue
        off += 1
        if length == 0:
            break
        labels.append(buf[off : off + length].decode("ascii", "replace"))
        off += length
    return ".".join(labels).lower() + ".", (end if end is not None else off)


def dns_query(addr: tuple[str, int], name: str, qtype: int = 16) -> tuple[int, list[bytes]]:
    """Asks `addr` for `name`/`qtype` over UDP (TCP when truncated). Returns the rcode and the
    rdata of the answers whose owner is `name` and whose type is `qtype`."""
    qid = random.randrange(0, 65536)
    packet = struct.pack(">HHHHHH", qid, 0x0000, 1, 0, 0, 0) + encode_name(name)
    packet += struct.pack(">HH", qtype, 1)
    reply = None
    for _ in range(5):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2.0)
            s.sendto(packet, addr)
            try:
                while True:
                    data, _ = s.recvfrom(65535)
                    if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                        reply = data
                        break
            except socket.timeout:
                continue
        break
    if reply is None:
        raise SetupError(f"no DNS answer from {addr} for {name}")
    if struct.unpack(">H", reply[2:4])[0] & 0x0200:  # TC: ask again over TCP
        with socket.create_connection(addr, timeout=5.0) as s:
            s.sendall(struct.pack(">H", len(packet)) + packet)
            raw = b""
            while len(raw) < 2 or len(raw) < 2 + struct.unpack(">H", raw[:2])[0]:
                chunk = s.recv(65535)
                if not chunk:
                    raise SetupError(f"DNS TCP connection closed early for {name}")
                raw += chunk
            reply = raw[2 : 2 + struct.unpack(">H", raw[:2])[0]]
    flags, qd, an = struct.unpack(">HHH", reply[2:8])
    off = 12
    for _ in range(qd):
        _, off = read_name(reply, off)
        off += 4
    rdatas = []
    for _ in range(an):
        owner, off = read_name(reply, off)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", reply[off : off + 10])
        off += 10
        if owner == name.lower() and rtype == qtype:
            rdatas.append(reply[off : off + rdlen])
        off += rdlen
    return flags & 0x000F, rdatas


def txt_strings(rdata: bytes) -> str:
    out, off = [], 0
    while off < len(rdata):
        n = rdata[off]
        out.append(rdata[off + 1 : off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# The server under test.


def free_port() -> int:
    """A port free for both UDP and TCP on loopback right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


class Server:
    def __init__(self, binary: str, workdir: str):
        self.binary = binary
        self.data_dir = os.path.join(workdir, "data")
        self.log_path = os.path.join(workdir, "server.log")
        self.dns_port = free_port()
        self.api_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def dns_addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.dns_port)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self, zone_ready: bool) -> float:
        """Starts r53 and returns once the API answers (and DNS serves the zone, if it exists).
        Returns the seconds it took."""
        self.starts += 1
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"\n===== crash/run.py: start #{self.starts} =====\n")
            log.flush()
            self.proc = subprocess.Popen(
                [
                    self.binary, "serve",
                    "--dns-addr", f"127.0.0.1:{self.dns_port}",
                    "--api-addr", f"127.0.0.1:{self.api_port}",
                    "--data-dir", self.data_dir,
                    "--zones-dir", "/nonexistent",
                    "--no-recursion",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        began = time.monotonic()
        deadline = began + READY_TIMEOUT_S
        api_up = False
        while True:
            if not api_up:
                try:
                    status, _ = api_request(self.api_port, "GET", f"{API_PREFIX}/hostedzone", timeout=2)
                    api_up = status == 200
                except (OSError, http.client.HTTPException):
                    pass
            if api_up:
                if not zone_ready:
                    return time.monotonic() - began
                try:
                    rcode, rdatas = dns_query(self.dns_addr, ZONE, 6)
                    if rcode == 0 and rdatas:
                        return time.monotonic() - began
                except (OSError, SetupError):
                    pass
            if time.monotonic() > deadline:
                self.kill()
                raise SetupError(f"r53 did not answer within {READY_TIMEOUT_S:.0f} s; log:\n{self.log_tail()}")
            try:
                # Doubles as the pause between polls and as the check that r53 is still alive.
                code = self.proc.wait(timeout=0.02)
                raise SetupError(f"r53 exited with {code} while starting; log:\n{self.log_tail()}")
            except subprocess.TimeoutExpired:
                pass

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def terminate(self) -> int:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            return -1


def api_request(port: int, method: str, path: str, body=None, timeout: float = 30.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, (json.loads(data) if data else None)
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# The ledger of batches.

ACKED = "acked"  # 200 INSYNC: must be present, whole, forever
REJECTED = "rejected"  # an HTTP error answer: must be absent
UNSENT = "unsent"  # the connection was refused, nothing reached r53: must be absent
IN_FLIGHT = "in-flight"  # sent, no answer: present or absent, whole; then stays so


@dataclass
class Batch:
    bid: str
    size: int
    round: int
    state: str = IN_FLIGHT
    change_id: str | None = None
    detail: str = ""
    # For in-flight batches: what the first check after their round found (True = present).
    resolved: bool | None = None

    def names(self) -> list[str]:
        return [f"s{i}.{self.bid}.{ZONE}" for i in range(self.size)]

    @staticmethod
    def value(bid: str, size: int, i: int) -> str:
        return f"crash:{bid}:{size}:{i}"

    def expected_present(self) -> bool | None:
        if self.state == ACKED:
            return True
        if self.state in (REJECTED, UNSENT):
            return False
        return self.resolved  # None until the first check after its round


@dataclass
class Ledger:
    batches: dict[str, Batch] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    transport_errors_while_alive: int = 0

    def add(self, b: Batch) -> None:
        with self.lock:
            self.batches[b.bid] = b


def client(idx: int, rnd: int, seed: int, port: int, zone_path: str, stop: threading.Event, ledger: Ledger) -> None:
    rng = random.Random(seed)
    conn: http.client.HTTPConnection | None = None
    seq = 0
    while not stop.is_set():
        size = rng.randint(2, 5)
        bid = f"r{rnd:03d}c{idx}n{seq:05d}"
        seq += 1
        batch = Batch(bid, size, rnd)
        changes = [
            {
                "Action": "CREATE",
                "ResourceRecordSet": {
                    "Name": name,
                    "Type": "TXT",
                    "TTL": 60,
                    "ResourceRecords": [{"Value": f'"{Batch.value(bid, size, i)}"'}],
                },
            }
            for i, name in enumerate(batch.names())
        ]
        body = json.dumps({"ChangeBatch": {"Comment": bid, "Changes": changes}})
        ledger.add(batch)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                conn.connect()
            except OSError as e:
                # Nothing reached r53: this batch cannot have been applied.
                batch.state, batch.detail = UNSENT, repr(e)
                conn = None
                if stop.is_set():
                    return
                with ledger.lock:
                    ledger.transport_errors_while_alive += 1
                continue
        try:
            conn.request("POST", f"{zone_path}/rrset", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            batch.state, batch.detail = IN_FLIGHT, repr(e)
            conn.close()
            conn = None
            if stop.is_set():
                return
            with ledger.lock:
                ledger.transport_errors_while_alive += 1
            continue
        if resp.status == 200:
            info = json.loads(data)["ChangeInfo"]
            if info.get("Status") != "INSYNC":
                batch.state, batch.detail = REJECTED, f"200 but status {info.get('Status')}"
            else:
                batch.state, batch.change_id = ACKED, info["Id"]
        else:
            batch.state, batch.detail = REJECTED, f"{resp.status} {data[:300]!r}"


# ---------------------------------------------------------------------------------------------
# Verification.


@dataclass
class Check:
    violations: list[str] = field(default_factory=list)
    listed_sets: int = 0
    dns_names: int = 0
    changes_checked: int = 0

    def fail(self, msg: str) -> None:
        self.violations.append(msg)


def list_zone(port: int, zone_path: str, page: int, check: Check) -> dict[str, dict]:
    """Every record set of the zone, page by page. Keyed by name/type."""
    sets: dict[str, dict] = {}
    query = f"?maxitems={page}"
    while True:
        status, body = api_request(port, "GET", f"{zone_path}/rrset{query}")
        if status != 200:
            raise SetupError(f"ListResourceRecordSets answered {status}: {body}")
        for rrset in body["ResourceRecordSets"]:
            key = f"{rrset['Name']}/{rrset['Type']}"
            if key in sets:
                check.fail(f"listing: {key} appears twice (paging)")
            sets[key] = rrset
        if not body["IsTruncated"]:
            return sets
        query = f"?maxitems={page}&name={body['NextRecordName']}&type={body['NextRecordType']}"


def verify(server: Server, zone_path: str, ledger: Ledger, rnd: int, rng: random.Random, dns_sample: int) -> Check:
    check = Check()
    page = rng.choice([50, 100, 300])
    sets = list_zone(server.api_port, zone_path, page, check)
    check.listed_sets = len(sets)
    status, body = api_request(server.api_port, "GET", zone_path)
    if status != 200:
        raise SetupError(f"GetHostedZone answered {status}: {body}")
    count = body["HostedZone"]["ResourceRecordSetCount"]
    if count != len(sets):
        check.fail(f"GetHostedZone counts {count} record sets, the listing has {len(sets)}")

    # Which sets of which batch are present, according to the API.
    present: dict[str, set[int]] = {}
    for key, rrset in sets.items():
        name, rtype = rrset["Name"], rrset["Type"]
        if name == ZONE and rtype in ("SOA", "NS"):
            continue
        values = [r["Value"] for r in rrset.get("ResourceRecords", [])]
        labels = name.split(".")
        if rtype != "TXT" or len(values) != 1 or len(labels) < 3 or not labels[0].startswith("s"):
            check.fail(f"unexpected record set {key}: {rrset}")
            continue
        parts = values[0].strip('"').split(":")
        bid = labels[1]
        batch = ledger.batches.get(bid)
        if batch is None:
            check.fail(f"{key} belongs to batch {bid}, which no client sent")
            continue
        try:
            i = int(labels[0][1:])
        except ValueError:
            i = -1
        if not (0 <= i < batch.size) or values[0] != f'"{Batch.value(bid, batch.size, i)}"' or parts[1] != bid:
            check.fail(f"{key} does not hold what batch {bid} wrote: {values}")
            continue
        present.setdefault(bid, set()).add(i)

    # No half-applied batch; nothing acknowledged lost; nothing refused applied.
    for bid, found in sorted(present.items()):
        batch = ledger.batches[bid]
        if len(found) != batch.size:
            missing = sorted(set(range(batch.size)) - found)
            check.fail(
                f"HALF-APPLIED batch {bid} ({batch.state}, round {batch.round}): "
                f"{len(found)} of {batch.size} sets present, missing s{missing}"
            )
    for bid, batch in ledger.batches.items():
        want = batch.expected_present()
        have = bid in present
        if want is True and not have:
            what = "ACKNOWLEDGED" if batch.state == ACKED else "in-flight, present after an earlier restart,"
            check.fail(f"LOST: {what} batch {bid} (round {batch.round}, change {batch.change_id}) is missing")
        elif want is False and have:
            why = batch.state if batch.state != IN_FLIGHT else "in-flight, absent after an earlier restart"
            check.fail(f"batch {bid} ({why}: {batch.detail}) is present")
        elif want is None:
            batch.resolved = have

    # DNS answers the same: the newest acknowledged batches (the ones most at risk), a random
    # sample of the rest, and some absent in-flight batches.
    batches = list(ledger.batches.values())
    acked_now = [b for b in batches if b.state == ACKED and b.round == rnd]
    acked_old = [b for b in batches if b.state == ACKED and b.round != rnd]
    absent = [b for b in batches if b.expected_present() is False]
    inflight_present = [b for b in batches if b.state == IN_FLIGHT and b.resolved]
    sample = acked_now[-dns_sample // 2 :] + rng.sample(acked_old, min(len(acked_old), dns_sample // 2))
    sample += inflight_present + rng.sample(absent, min(len(absent), 10))
    for batch in sample:
        should = batch.expected_present()
        for i, name in enumerate(batch.names()):
            rcode, rdatas = dns_query(server.dns_addr, name)
            check.dns_names += 1
            got = [txt_strings(r) for r in rdatas]
            if should and (rcode != 0 or got != [Batch.value(batch.bid, batch.size, i)]):
                check.fail(f"DNS: {name} ({batch.state} batch) answered rcode {rcode} {got}")
            if not should and (rcode != 3 or got):
                check.fail(f"DNS: {name} (absent {batch.state} batch) answered rcode {rcode} {got}, not NXDOMAIN")

    # GetChange still knows a sample of the acknowledged changes.
    for batch in rng.sample([b for b in batches if b.state == ACKED], min(20, len(acked_now) + len(acked_old))):
        status, body = api_request(server.api_port, "GET", f"{API_PREFIX}{batch.change_id}")
        check.changes_checked += 1
        if status != 200 or body["ChangeInfo"]["Status"] != "INSYNC":
            check.fail(f"GetChange {batch.change_id} (batch {batch.bid}) answered {status} {body}")
    return check


# ---------------------------------------------------------------------------------------------


def print_violations(violations: list[str], limit: int = 20) -> None:
    for v in violations[:limit]:
        print(f"  VIOLATION: {v}", flush=True)
    if len(violations) > limit:
        print(f"  ... and {len(violations) - limit} more", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="the r53 binary (e.g. target/release/r53); not built here")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILL rounds (default 20)")
    parser.add_argument("--clients", type=int, default=6, help="concurrent API clients (default 6)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--min-delay-ms", type=int, default=50)
    parser.add_argument("--max-delay-ms", type=int, default=500)
    parser.add_argument("--dns-sample", type=int, default=40, help="batches checked over DNS per round")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and server log")
    args = parser.parse_args()

    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        print(f"crash: {args.bin} is not an executable; build it first (cargo build --release)", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    random.seed(seed ^ 0x5EED)
    workdir = tempfile.mkdtemp(prefix="r53-crash-")
    print(f"crash: binary {binary}, {args.kills} kills, {args.clients} clients, seed {seed}, dir {workdir}")

    server = Server(binary, workdir)
    ledger = Ledger()
    violations: list[str] = []
    totals = Check()
    started = time.monotonic()
    ok = False
    try:
        server.start(zone_ready=False)
        status, body = api_request(
            server.api_port, "POST", f"{API_PREFIX}/hostedzone",
            {"Name": ZONE, "CallerReference": f"crash-{seed}", "HostedZoneConfig": {"Comment": "crash test"}},
        )
        if status != 201:
            raise SetupError(f"CreateHostedZone answered {status}: {body}")
        zone_path = API_PREFIX + body["HostedZone"]["Id"]

        for rnd in range(1, args.kills + 1):
            stop = threading.Event()
            threads = [
                threading.Thread(
                    target=client,
                    args=(c, rnd, rng.randrange(1 << 32), server.api_port, zone_path, stop, ledger),
                    daemon=True,
                )
                for c in range(args.clients)
            ]
            for t in threads:
                t.start()
            delay = rng.uniform(args.min_delay_ms, args.max_delay_ms) / 1000
            time.sleep(delay)  # the random moment of the kill, not a readiness wait
            stop.set()
            server.kill()
            for t in threads:
                t.join(timeout=60)
                if t.is_alive():
                    raise SetupError("a client thread did not finish after the kill")
            ready = server.start(zone_ready=True)
            check = verify(server, zone_path, ledger, rnd, rng, args.dns_sample)
            this = [b for b in ledger.batches.values() if b.round == rnd]
            counts = {s: sum(1 for b in this if b.state == s) for s in (ACKED, IN_FLIGHT, REJECTED, UNSENT)}
            kept = sum(1 for b in this if b.state == IN_FLIGHT and b.resolved)
            print(
                f"kill {rnd:3d}/{args.kills} after {delay * 1000:5.0f} ms: "
                f"{counts[ACKED]:4d} acked, {counts[IN_FLIGHT]} in flight ({kept} applied), "
                f"{counts[REJECTED]} rejected, {counts[UNSENT]} unsent; restart {ready * 1000:.0f} ms; "
                f"{check.listed_sets} sets listed, {check.dns_names} DNS names, "
                f"{check.changes_checked} changes: {'OK' if not check.violations else 'VIOLATIONS'}",
                flush=True,
            )
            print_violations(check.violations)
            violations += [f"kill {rnd}: {v}" for v in check.violations]
            totals.listed_sets = check.listed_sets
            totals.dns_names += check.dns_names
            totals.changes_checked += check.changes_checked

        # A clean stop keeps everything too, and the next start serves it.
        code = server.terminate()
        if code != 0:
            violations.append(f"SIGTERM: r53 exited with {code}; log:\n{server.log_tail()}")
        server.start(zone_ready=True)
        check = verify(server, zone_path, ledger, args.kills + 1, rng, args.dns_sample)
        totals.dns_names += check.dns_names
        totals.changes_checked += check.changes_checked
        print(f"SIGTERM and restart: {check.listed_sets} sets listed: {'OK' if not check.violations else 'VIOLATIONS'}")
        print_violations(check.violations)
        violations += [f"after SIGTERM: {v}" for v in check.violations]
        code = server.terminate()
        if code != 0:
            violations.append(f"final SIGTERM: r53 exited with {code}")
    except SetupError as e:
        server.kill()
        print(f"crash: could not complete the run: {e}\n(data and log kept in {workdir})", file=sys.stderr)
        return 2
    finally:
        server.kill()

    all_batches = list(ledger.batches.values())
    acked = sum(1 for b in all_batches if b.state == ACKED)
    acked_sets = sum(b.size for b in all_batches if b.state == ACKED)
    in_flight = [b for b in all_batches if b.state == IN_FLIGHT]
    applied = sum(1 for b in in_flight if b.resolved)
    rejected = [b for b in all_batches if b.state == REJECTED]
    unsent = sum(1 for b in all_batches if b.state == UNSENT)
    print(
        f"\nsummary: {args.kills} kills in {time.monotonic() - started:.1f} s (seed {seed}); "
        f"{len(all_batches)} batches sent by {args.clients} clients: "
        f"{acked} acknowledged ({acked_sets} record sets), {len(in_flight)} in flight at a kill "
        f"({applied} applied whole, {len(in_flight) - applied} absent), {len(rejected)} rejected, "
        f"{unsent} unsent; {ledger.transport_errors_while_alive} transport errors while r53 was up; "
        f"verified after every restart: {totals.listed_sets} record sets listed at the end, "
        f"{totals.dns_names} DNS names queried, {totals.changes_checked} GetChange calls; "
        f"{len(violations)} violations"
    )
    if rejected:
        print(f"note: rejected batches (must be absent, and were unless listed above), e.g. {rejected[0].bid}: {rejected[0].detail}")
    if acked == 0:
        violations.append("no batch was acknowledged: the run proved nothing")
    if violations:
        print(f"FAILED: {len(violations)} violations; data and log kept in {workdir}", file=sys.stderr)
        return 1
    ok = True
    if ok and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"data and log kept in {workdir}")
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
