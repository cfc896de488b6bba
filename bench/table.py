#!/usr/bin/env python3
"""Print run.sh's results as one table (Markdown, so it can go straight into README.md).

results.tsv rows (space separated):
proto order server max_qps lost mean_ms fixed_qps fixed_lost fixed_mean_ms fixed_p99_ms rss_mib pss_mib
cpu_us_per_query (at the fixed rate)

--resolver FILE rows (space separated), one per resolver run:
order server qps lost mean_ms rss_mib pss_mib rcodes
"""
import argparse
import statistics


def kv(line):
    return dict(p.split("=", 1) for p in line.split()[1:] if "=" in p) if line else {}


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--start", action="append", default=[])
    ap.add_argument("--api", default="")
    ap.add_argument("--vis", default="")
    ap.add_argument("--callgrind", default="")
    ap.add_argument("--header", default="")
    ap.add_argument("--extra", default="")
    ap.add_argument("--churn", default="")
    ap.add_argument("--resolver", default="")
    ap.add_argument("--resolver-meta", default="")
    ap.add_argument("--million", default="", help="key=value figures of the 1,000,000-record starts")
    args = ap.parse_args()

    rows = [l.split() for l in open(args.results) if l.strip()]
    print(args.header)
    print()
    print("| proto | order | server | max q/s | lost | mean ms at max | fixed q/s | lost | mean ms | p99 ms | RSS MiB | PSS MiB | CPU us/query |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()

    def agg(proto, server, col, f=statistics.mean):
        vals = [num(r[col]) for r in rows if r[0] == proto and r[2] == server]
        vals = [v for v in vals if v == v]
        return f(vals) if vals else float("nan")

    print("| proto | ratio | max q/s | lost (sum) | mean ms at fixed rate | p99 ms at fixed rate | PSS | CPU per query |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for proto in sorted({r[0] for r in rows}, key=lambda p: p != "udp"):
        for other in ("NSD", "Knot"):
            def ratio(col):
                a, b = agg(proto, "r53", col), agg(proto, other, col)
                return f"{a / b:.2f}" if b else "n/a"
            lost_r53 = agg(proto, "r53", 4, sum)
            lost_o = agg(proto, other, 4, sum)
            print(f"| {proto} | r53/{other} | {ratio(3)} | {lost_r53:.0f} vs {lost_o:.0f} | {ratio(8)} | {ratio(9)} | {ratio(11)} | {ratio(12)} |")
    print()
    print("(ratios use the mean of the forward and reverse runs; q/s above 1 is better for r53, latency, memory and CPU per query below 1)")
    print()
    if args.start:
        print("start-up to first answer: " + ", ".join(f"{k} {num(v):.2f} s" for k, v in (s.split("=", 1) for s in args.start)))
    api = kv(args.api)
    if api:
        secs = num(api["duration_us"]) / 1e6
        print(f"API changes, durable, single-record UPSERT batches, 8 clients (wrk -t2 -c8): "
              f"{num(api['requests']) / secs:.0f} changes/s, {api['non2xx']} non-2xx, {api['socket_errors']} socket errors, "
              f"latency p50 {num(api['p50_us']) / 1000:.1f} ms p99 {num(api['p99_us']) / 1000:.1f} ms")
    vis = kv(args.vis)
    if vis:
        print(f"API acknowledgement to visible DNS answer ({vis.get('changes')} changes, 1 client): "
              f"median {num(vis.get('median_us')):.0f} us, p99 {num(vis.get('p99_us')):.0f} us, max {num(vis.get('max_us')):.0f} us; "
              f"{vis.get('first_query_hit')} visible on the first query, {vis.get('errors')} errors; "
              f"ack latency median {num(vis.get('ack_median_us')) / 1000:.2f} ms, max {num(vis.get('ack_max_us')) / 1000:.2f} ms")
    churn = kv(args.churn)
    if churn:
        rcodes = churn.get("rcodes", "none")
        rcodes = "all NOERROR" if rcodes.startswith("NOERROR:") and "," not in rcodes else rcodes
        print(f"Alias churn, www.churn.bench. A while its endpoint changes {num(churn.get('target_rate')):.0f} times a second "
              f"(dnsperf -m udp, {churn.get('duration')} s): {churn.get('qps')} answers/s, {churn.get('lost')} lost, "
              f"mean {churn.get('mean_ms')} ms, {rcodes} (the same name without changes: {churn.get('static_qps')} answers/s, "
              f"{churn.get('static_lost')} lost); changes: {num(churn.get('rate')):.1f}/s achieved, {churn.get('ok')} of "
              f"{churn.get('changes')} acknowledged, {churn.get('failed')} failed, ack p50 {churn.get('ack_p50_ms')} ms "
              f"p99 {churn.get('ack_p99_ms')} ms max {churn.get('ack_max_ms')} ms; the query after each ack: "
              f"{churn.get('followed')} new address, {churn.get('stale')} old, {churn.get('unanswered')} unanswered; "
              f"after the run: {churn.get('final')}")
    if args.resolver:
        res = [l.split() for l in open(args.resolver) if l.strip()]
        meta = kv(args.resolver_meta)
        if res:
            def col(server, i):
                return [num(r[i]) for r in res if r[1] == server]

            def mean(server, i):
                vals = [v for v in col(server, i) if v == v]
                return statistics.mean(vals) if vals else float("nan")

            names = {"r53": "r53", "Unbound": f"Unbound {meta.get('unbound', '')}".strip()}
            parts = []
            for server in ("r53", "Unbound"):
                runs = {r[0]: r for r in res if r[1] == server}
                qps = " / ".join(runs[o][2] for o in ("forward", "reverse") if o in runs)
                parts.append(f"{names[server]} {qps} q/s, {sum(col(server, 3)):.0f} lost, mean {mean(server, 4):.3f} ms, "
                             f"RSS {mean(server, 5):.0f} MiB, PSS {mean(server, 6):.0f} MiB, "
                             f"{meta.get(server + '_misses', '?')} cache misses")

            def ratio(i):
                a, b = mean("r53", i), mean("Unbound", i)
                return f"{a / b:.2f}" if b else "n/a"
            print(f"Resolver cache hits, bench.test. forwarded to Knot, {meta.get('names')} distinct questions, warmed "
                  f"(dnsperf -m udp, {meta.get('duration')} s, forward / reverse): " + "; ".join(parts))
            print(f"Resolver cache hits, r53/Unbound: {ratio(2)} q/s, {ratio(4)} mean latency, {ratio(5)} RSS "
                  f"(goal: q/s at least 1.00); response codes: "
                  + ", ".join(f"{r[1]} {r[0]} {r[7]}" for r in res if r[0] == "forward"))
    if args.extra:
        print(args.extra)
    if args.callgrind:
        print(args.callgrind)
    print()
    goals(rows, agg, api, vis, args)


def goals(rows, agg, api, vis, args):
    """Issue 6's goals, each with this run's figure and whether it is met ("-" when this run
    did not measure it). A summary of the lines above, not a test: the figures move from run
    to run (see bench/README.md)."""
    out = []

    def add(goal, figure, met):
        out.append((goal, figure, "-" if met is None else ("yes" if met else "no")))

    def ratio(proto, other, col):
        a, b = agg(proto, "r53", col), agg(proto, other, col)
        return a / b if b and a == a and b == b else float("nan")

    for proto, least in (("udp", 1.2), ("tcp", 1.0)):
        if not any(r[0] == proto for r in rows):
            continue
        nsd, knot = ratio(proto, "NSD", 3), ratio(proto, "Knot", 3)
        lost = agg(proto, "r53", 4, sum)
        add(f"{proto.upper()} q/s at least {least:.1f}x NSD's and Knot's, nothing lost",
            f"{nsd:.2f}x / {knot:.2f}x, {lost:.0f} lost", nsd >= least and knot >= least and lost == 0)
        p99 = ratio(proto, "NSD", 9)
        add(f"{proto.upper()} p99 at half NSD's maximum rate no higher than NSD's",
            f"{p99:.2f}x NSD's", p99 <= 1.0 if p99 == p99 else None)
    if vis:
        median = num(vis.get("median_us"))
        add("API change to visible answer under 1 ms at the median", f"{median:.0f} us", median < 1000)
    if api:
        rate = num(api["requests"]) / (num(api["duration_us"]) / 1e6)
        add("at least 5,000 durable API changes/s with 8 clients", f"{rate:.0f}/s", rate >= 5000)
    big = kv("M " + args.million) if args.million else {}
    if big:
        t, rss = num(big.get("r53_t")), num(big.get("r53_rss"))
        kt, krss = num(big.get("knot_t")), num(big.get("knot_rss"))
        add("1,000,000 records: start-up and RSS no worse than Knot's (after a clean stop)",
            f"{t:.2f} s / {rss:.0f} MiB vs {kt:.2f} s / {krss:.0f} MiB", t <= kt and rss <= krss)
        if "r53_live_t" in big:
            lt, lrss = num(big.get("r53_live_t")), num(big.get("r53_live_rss"))
            add("the same after a kill -9 once the zones were quiet after a change (live snapshot)",
                f"{lt:.2f} s / {lrss:.0f} MiB vs {kt:.2f} s / {krss:.0f} MiB", lt <= kt and lrss <= krss)
        st, srss = num(big.get("r53_scan_t")), num(big.get("r53_scan_rss"))
        add("the same after a kill -9 right after an acknowledged change (sled scanned)",
            f"{st:.2f} s / {srss:.0f} MiB vs {kt:.2f} s / {krss:.0f} MiB", st <= kt and srss <= krss)
    if args.resolver:
        res = [l.split() for l in open(args.resolver) if l.strip()]
        r53 = [num(r[2]) for r in res if r[1] == "r53"]
        unbound = [num(r[2]) for r in res if r[1] == "Unbound"]
        if r53 and unbound:
            q = statistics.mean(r53) / statistics.mean(unbound)
            add("resolver cache hits/s at least Unbound's", f"{q:.2f}x", q >= 1.0)
    if not out:
        return
    print("| issue 6 goal | this run | met |")
    print("|---|---|---|")
    for goal, figure, met in out:
        print(f"| {goal} | {figure} | {met} |")


if __name__ == "__main__":
    main()
