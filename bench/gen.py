#!/usr/bin/env python3
"""Generate the benchmark zone and the dnsperf query file.

    gen.py --names N --zone-out DIR/bench.test.zone --queries-out queries.txt [--queries Q] [--seed S]

The zone `bench.test.` has N host names h0..h{N-1}, each with an A record; one in ten also
has an AAAA. N/20 further names c0.. are CNAMEs to host names; the apex has SOA, NS (with glue),
two MX and a TXT; one in fifty hosts also has a TXT.

The query file mixes 80% A for existing hosts, 10% A for names that do not exist (NXDOMAIN),
5% A for CNAME names (answered with the CNAME and its in-zone target) and 5% AAAA for hosts
that have one. One name in four has its letters in random case (0x20 style). The mix is fixed
by the seed, so every server gets exactly the same queries.
"""
import argparse
import random

ZONE = "bench.test."


def rand_case(rng, name):
    return "".join(c.upper() if c.isalpha() and rng.random() < 0.5 else c for c in name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", type=int, default=10000)
    ap.add_argument("--zone-out", required=True)
    ap.add_argument("--queries-out", required=True)
    ap.add_argument("--queries", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=53)
    args = ap.parse_args()
    n = max(args.names, 20)
    rng = random.Random(args.seed)
    ncname = max(n // 20, 1)

    with open(args.zone_out, "w") as z:
        w = z.write
        w(f"$ORIGIN {ZONE}\n$TTL 300\n")
        w(f"@ 3600 IN SOA ns1.{ZONE} hostmaster.{ZONE} 1 7200 900 1209600 300\n")
        w(f"@ 3600 IN NS ns1.{ZONE}\n@ 3600 IN NS ns2.{ZONE}\n")
        w(f"@ IN MX 10 mail.{ZONE}\n@ IN MX 20 mail2.{ZONE}\n")
        w('@ IN TXT "v=spf1 mx -all"\n')
        w(f"ns1 3600 IN A 192.0.2.1\nns2 3600 IN A 192.0.2.2\n")
        w(f"mail IN A 192.0.2.25\nmail2 IN A 192.0.2.26\n")
        for i in range(n):
            w(f"h{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
            if i % 10 == 0:
                w(f"h{i} IN AAAA 2001:db8::{i >> 16:x}:{i & 0xffff:x}\n")
            if i % 50 == 0:
                w(f'h{i} IN TXT "host {i} of the benchmark zone"\n')
        for j in range(ncname):
            w(f"c{j} IN CNAME h{rng.randrange(n)}.{ZONE}\n")

    with open(args.queries_out, "w") as q:
        for _ in range(args.queries):
            r = rng.random()
            if r < 0.80:
                name, qtype = f"h{rng.randrange(n)}.{ZONE}", "A"
            elif r < 0.90:
                name, qtype = f"nx{rng.randrange(10 * n)}.{ZONE}", "A"
            elif r < 0.95:
                name, qtype = f"c{rng.randrange(ncname)}.{ZONE}", "A"
            else:
                name, qtype = f"h{10 * rng.randrange((n + 9) // 10)}.{ZONE}", "AAAA"
            if rng.random() < 0.25:
                name = rand_case(rng, name)
            q.write(f"{name} {qtype}\n")


if __name__ == "__main__":
    main()
