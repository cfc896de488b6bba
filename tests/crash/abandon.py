#!/usr/bin/env python3
"""Reproduces a lost-update bug: a client that hangs up while its change batch is being handled.

What it checks: the record sets the API serves before a clean restart (SIGTERM) are exactly the
ones on disk after it. Four clients each send 300 ChangeResourceRecordSets batches (2 CREATEs)
over raw sockets and reset the connection 0 to 4 ms later without reading the answer; then one
acknowledged change (a barrier: its flush publishes everything applied before it) and a listing
of the zone; SIGTERM; restart; listing again. Exits 1 when the two listings differ.

Found with r53 at the time of writing: hundreds of batches on disk that were never served. hyper
drops the handler's future when its client goes away; `Service::change_rrsets` awaits the sled
transaction (spawn_blocking, which runs on regardless), is dropped at that await, and never
updates the in-memory state, so the change is committed and durable but not served until the
next restart. (A late-arriving request could in principle run after the barrier: a difference
of one or two batches on a fixed server would be that, not hundreds.)

    cargo build --release
    python3 tests/crash/abandon.py --bin target/release/r53
"""
import argparse
import importlib.util
import json
import os
import random
import socket
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("crash_run", os.path.join(HERE, "run.py"))
run = importlib.util.module_from_spec(spec)
sys.modules["crash_run"] = run
spec.loader.exec_module(run)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--batches", type=int, default=300, help="per client (4 clients)")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="r53-abandon-")
    srv = run.Server(os.path.abspath(args.bin), workdir)
    try:
        srv.start(zone_ready=False)
        _, body = run.api_request(srv.api_port, "POST", "/2013-04-01/hostedzone",
                                  {"Name": run.ZONE, "CallerReference": "abandon"})
        zone_path = "/2013-04-01" + body["HostedZone"]["Id"]

        def worker(w: int) -> None:
            for k in range(args.batches):
                bid = f"w{w}k{k:05d}"
                changes = [{"Action": "CREATE", "ResourceRecordSet": {
                    "Name": f"s{i}.{bid}.{run.ZONE}", "Type": "TXT", "TTL": 60,
                    "ResourceRecords": [{"Value": f'"crash:{bid}:2:{i}"'}]}} for i in range(2)]
                b = json.dumps({"ChangeBatch": {"Changes": changes}}).encode()
                s = socket.create_connection(("127.0.0.1", srv.api_port))
                s.sendall(f"POST {zone_path}/rrset HTTP/1.1\r\nHost: r53\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(b)}\r\n\r\n".encode() + b)
                threading.Event().wait(random.uniform(0, 0.004))  # hang up mid-handling
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        status, _ = run.api_request(srv.api_port, "POST", zone_path + "/rrset", {"ChangeBatch": {"Changes": [
            {"Action": "CREATE", "ResourceRecordSet": {"Name": "barrier." + run.ZONE, "Type": "TXT", "TTL": 60,
                                                       "ResourceRecords": [{"Value": '"barrier"'}]}}]}})
        assert status == 200, status
        check = run.Check()
        served = set(run.list_zone(srv.api_port, zone_path, 300, check))
        code = srv.terminate()
        srv.start(zone_ready=True)
        on_disk = set(run.list_zone(srv.api_port, zone_path, 300, check))
        srv.terminate()
    finally:
        srv.kill()
    hidden = sorted(on_disk - served)
    lost = sorted(served - on_disk)
    print(f"served before SIGTERM (exit {code}): {len(served)} record sets; after restart: {len(on_disk)}")
    print(f"on disk but not served before the restart: {len(hidden)} {hidden[:4]}")
    print(f"served but not on disk: {len(lost)} {lost[:4]}")
    print(f"(data and log in {workdir})")
    return 1 if hidden or lost or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
