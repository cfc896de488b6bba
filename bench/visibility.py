#!/usr/bin/env python3
"""Time from an API change's acknowledgement to the first DNS answer that reflects it.

    visibility.py --api 127.0.0.1:8053 --dns 127.0.0.1:53 --zone-id ZID --zone api.bench. [--changes 1000]

For each of --changes rounds: UPSERT one A record (always the same name, a new address each
time) with a single-record ChangeResourceRecordSets call over a kept-alive HTTP connection;
when the 200 (INSYNC) arrives, start the clock and send a UDP query for the name from a raw
socket, again and again until the answer carries the new address. Prints the median and max
of that time, how many changes were visible on the very first query, and the acknowledgement
latency (request sent to 200 received). The time includes one UDP round trip through Python
(~30-60 us here), so it is an upper bound on the server's own delay.
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import struct
import sys
import time

from dnswire import a_records, encode_name




def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", required=True)
    ap.add_argument("--dns", required=True)
    ap.add_argument("--zone-id", required=True)
    ap.add_argument("--zone", required=True)
    ap.add_argument("--changes", type=int, default=1000)
    args = ap.parse_args()

    host, port = args.api.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    dhost, dport = args.dns.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((dhost, int(dport)))
    sock.settimeout(2)
    name = "visible." + args.zone
    path = f"/2013-04-01/hostedzone/{args.zone_id}/rrset"
    qname = encode_name(name)

    delays, acks, first_hit, errors, queries = [], [], 0, 0, 0
    for i in range(args.changes):
        ip = f"10.{200 + (i >> 16) % 50}.{(i >> 8) & 255}.{i & 255}"
        body = json.dumps({"ChangeBatch": {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
            "Name": name, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": ip}]}}]}})
        t_send = time.perf_counter()
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        t_ack = time.perf_counter()
        if resp.status != 200:
            errors += 1
            continue
        acks.append(t_ack - t_send)
        tries = 0
        while True:
            tries += 1
            qid = (i + tries) & 0xFFFF
            sock.send(struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1))
            try:
                while True:
                    reply = sock.recv(4096)
                    if reply[:2] == struct.pack("!H", qid):
                        break
            except socket.timeout:
                continue
            if ip in a_records(reply):
                delays.append(time.perf_counter() - t_ack)
                break
            if time.perf_counter() - t_ack > 5:
                print(f"change {i}: {ip} not visible after 5 s", file=sys.stderr)
                errors += 1
                break
        queries += tries
        if tries == 1:
            first_hit += 1

    if not delays:
        print("VIS_RESULT changes=0 errors=%d" % errors)
        return 1
    us = lambda s: s * 1e6
    print("VIS_RESULT changes=%d errors=%d first_query_hit=%d median_us=%.0f p99_us=%.0f max_us=%.0f "
          "ack_median_us=%.0f ack_max_us=%.0f" % (
              len(delays), errors, first_hit, us(statistics.median(delays)),
              us(sorted(delays)[int(len(delays) * 0.99) - 1]), us(max(delays)),
              us(statistics.median(acks)), us(max(acks))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
