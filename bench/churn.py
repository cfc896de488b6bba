#!/usr/bin/env python3
"""Alias churn: an Alias name whose endpoint changes address N times a second.

    churn.py setup --api 127.0.0.1:8053 [--zone churn.bench.] [--endpoint churn.elb.r53.internal.]
    churn.py run --api 127.0.0.1:8053 --dns 127.0.0.1:53 [--rate 100] [--duration 15] [...]

`setup` creates the hosted zone (POST /2013-04-01/hostedzone), registers the endpoint as a
load balancer (PUT /v1/endpoints/NAME, no lease) and points `www.ZONE` A at it with an Alias
(AliasTarget in the endpoint hosted zone ZR53ELBENDPOINTS, EvaluateTargetHealth false). It
checks that a DNS query for the name answers the endpoint's address when --dns is given.

`run` re-registers the endpoint with a new address (one address each time: 10.X.Y.Z from a
counter) over one kept-alive HTTP connection, paced at --rate changes per second for
--duration seconds: change i is sent at start + i/rate, or at once when the previous one was
late (no catching up with bursts, no skipping). After each acknowledgement (200; r53 answers
once the change is durable and served) one query for the name goes out from a raw UDP
socket, and its answer is classified: the new address (followed), another address (stale:
a bug, since the acknowledgement promises the next query sees it) or no answer within 0.2 s
(lost; the server is saturated by dnsperf meanwhile). After the last change, one more query
(retried up to 2 s) must answer the last address. Prints one CHURN_RESULT line of key=value.
Only the Python standard library.
"""
import argparse
import http.client
import json
import socket
import statistics
import struct
import sys
import time

from dnswire import a_records, encode_name

ENDPOINT_ZONE_ID = "ZR53ELBENDPOINTS"




class Dns:
    """Queries for one name (A, no RD) from one connected UDP socket."""

    def __init__(self, addr, name):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect((host, int(port)))
        self.qname = encode_name(name)
        self.qid = 0

    def ask(self, timeout):
        """The A addresses answered, or None when no answer came within `timeout`."""
        self.qid = (self.qid + 1) & 0xFFFF
        self.sock.send(struct.pack("!HHHHHH", self.qid, 0, 1, 0, 0, 0) + self.qname + struct.pack("!HH", 1, 1))
        deadline = time.perf_counter() + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                reply = self.sock.recv(4096)
            except socket.timeout:
                return None
            if reply[:2] == struct.pack("!H", self.qid):
                return a_records(reply)


class Api:
    def __init__(self, addr):
        self.host, port = addr.rsplit(":", 1)
        self.port = int(port)
        self.conn = None

    def call(self, method, path, body):
        """(status, decoded JSON or None); reconnects once when the kept-alive connection broke."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.conn.request(method, path, json.dumps(body), {"Content-Type": "application/json"})
                resp = self.conn.getresponse()
                data = resp.read()
                try:
                    decoded = json.loads(data) if data else None
                except ValueError:
                    decoded = None
                return resp.status, decoded
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise


def endpoint_body(ip):
    return {"Kind": "load-balancer", "Addresses": [{"Address": ip, "Healthy": True}], "TTL": 60}


def address(i):
    return f"10.{100 + (i >> 16) % 100}.{(i >> 8) & 255}.{i & 255}"


def setup(args):
    api = Api(args.api)
    status, zone = api.call("POST", "/2013-04-01/hostedzone",
                            {"Name": args.zone, "CallerReference": f"churn-{time.time_ns()}"})
    if status != 201:
        sys.exit(f"creating {args.zone}: HTTP {status} {zone}")
    zone_id = zone["HostedZone"]["Id"].split("/")[-1]
    status, body = api.call("PUT", f"/v1/endpoints/{args.endpoint}", endpoint_body(address(0)))
    if status != 200:
        sys.exit(f"registering {args.endpoint}: HTTP {status} {body}")
    name = "www." + args.zone
    status, body = api.call("POST", f"/2013-04-01/hostedzone/{zone_id}/rrset", {"ChangeBatch": {"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": "A", "AliasTarget": {
            "HostedZoneId": ENDPOINT_ZONE_ID, "DNSName": args.endpoint, "EvaluateTargetHealth": False}}}]}})
    if status != 200:
        sys.exit(f"creating the Alias {name}: HTTP {status} {body}")
    if args.dns:
        got = Dns(args.dns, name).ask(2)
        if got != [address(0)]:
            sys.exit(f"{name} answers {got}, expected [{address(0)}]")
    print(zone_id)


def run(args):
    api = Api(args.api)
    dns = Dns(args.dns, "www." + args.zone)
    path = f"/v1/endpoints/{args.endpoint}"
    total = int(args.rate * args.duration)
    acks, ok, failed, followed, stale, unanswered = [], 0, 0, 0, 0, 0
    last_ip = None
    start = time.perf_counter()
    for i in range(1, total + 1):
        due = start + (i - 1) / args.rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        ip = address(i)
        t0 = time.perf_counter()
        try:
            status, _ = api.call("PUT", path, endpoint_body(ip))
        except (OSError, http.client.HTTPException):
            status = 0
        t1 = time.perf_counter()
        if status != 200:
            failed += 1
            continue
        ok += 1
        last_ip = ip
        acks.append(t1 - t0)
        got = dns.ask(0.2)
        if got is None:
            unanswered += 1
        elif got == [ip]:
            followed += 1
        else:
            stale += 1
            if stale <= 3:
                print(f"change {i}: acknowledged {ip}, next query answered {got}", file=sys.stderr)
    # The rate over the scheduled window (total / rate seconds), or over the time it took
    # when the changes ran late.
    elapsed = max(time.perf_counter() - start, total / args.rate)
    # After the run: the answer is the last address acknowledged.
    final = None
    deadline = time.perf_counter() + 2
    while final is None and time.perf_counter() < deadline:
        final = dns.ask(0.2)
    final_ok = last_ip is not None and final == [last_ip]
    ms = lambda s: s * 1000
    print("CHURN_RESULT target_rate=%g changes=%d ok=%d failed=%d seconds=%.2f rate=%.1f followed=%d stale=%d "
          "unanswered=%d final=%s ack_p50_ms=%.2f ack_p99_ms=%.2f ack_max_ms=%.2f" % (
              args.rate, total, ok, failed, elapsed, ok / elapsed if elapsed else 0, followed, stale,
              unanswered, "ok" if final_ok else "WRONG(%s!=%s)" % (final, last_ip),
              ms(statistics.median(acks)) if acks else float("nan"),
              ms(sorted(acks)[max(int(len(acks) * 0.99) - 1, 0)]) if acks else float("nan"),
              ms(max(acks)) if acks else float("nan")))
    return 0 if final_ok and not stale else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["setup", "run"])
    ap.add_argument("--api", required=True)
    ap.add_argument("--dns")
    ap.add_argument("--zone", default="churn.bench.")
    ap.add_argument("--endpoint", default="churn.elb.r53.internal.")
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--duration", type=float, default=15)
    args = ap.parse_args()
    if args.mode == "setup":
        return setup(args)
    if not args.dns:
        ap.error("run needs --dns")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
