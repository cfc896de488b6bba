#!/usr/bin/env bash
# r53 against NSD and Knot DNS on this machine, in one run. See bench/README.md.
#
#   bench/run.sh [--names N] [--duration S] [--quick] [--workers W] [--clients C]
#                [--port-base P] [--callgrind] [--million] [--keep] [--capped PCT] [--smoke]
#
# Installs what it needs (Debian: dnsperf nsd knot unbound dnsutils wrk curl python3), builds
# r53 with `cargo build --release` at the root of the repository this script lives in (set
# R53_BIN to use a binary built elsewhere), generates a zone and a query file, serves the same
# zone from r53, NSD and Knot on loopback, measures them with dnsperf over UDP and TCP (forward
# order, then reverse), measures r53's API, an Alias under endpoint churn, and r53's resolver
# cache against Unbound's, and prints one table.
set -euo pipefail

NAMES=10000
DURATION=15
WORKERS=2
CLIENTS=4
PORT_BASE=25300
QUICK=0
CALLGRIND=0
MILLION=0
KEEP=0
CAPPED=""
while [ $# -gt 0 ]; do
  case "$1" in
    --names) NAMES=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --port-base) PORT_BASE=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --smoke) QUICK=2; shift ;;
    --callgrind) CALLGRIND=1; shift ;;
    --million) MILLION=1; shift ;;
    --keep) KEEP=1; shift ;;
    --capped) CAPPED=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
CHURN_RATE=100  # endpoint changes per second during the Alias churn run
if [ "$QUICK" = 2 ]; then
  # CI's smoke run: every section once, for a second, on a small zone. It only shows that
  # the benchmark still works (its figures mean nothing).
  NAMES=500; DURATION=1; LAT_DURATION=1; API_DURATION=1; VIS_CHANGES=20
elif [ "$QUICK" = 1 ]; then
  DURATION=3; LAT_DURATION=2; API_DURATION=3; VIS_CHANGES=200
else
  LAT_DURATION=$(( DURATION * 2 / 3 > 3 ? DURATION * 2 / 3 : 3 )); API_DURATION=10; VIS_CHANGES=1000
fi

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH_DIR")
say() { printf '\n== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- tools
need=()
for pair in dnsperf:dnsperf nsd:nsd knotd:knot knotc:knot unbound:unbound unbound-control:unbound dig:dnsutils wrk:wrk curl:curl python3:python3 ss:iproute2; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair##*:}")
done
[ "$CALLGRIND" = 1 ] && ! command -v valgrind >/dev/null && need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
  need=($(printf '%s\n' "${need[@]}" | sort -u))
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The packages would start their own daemons on port 53 (Unbound's, with resolvconf, would
  # also point /etc/resolv.conf at itself): a policy-rc.d that denies every start keeps them
  # down during the install, unless the system has its own policy-rc.d already.
  RC_GUARD=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# bench/run.sh: no daemon starts while it installs packages\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d; RC_GUARD=1
  fi
  rc=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } || rc=$?
  if [ -n "$RC_GUARD" ]; then rm -f /usr/sbin/policy-rc.d; fi
  [ "$rc" = 0 ] || { echo "installing ${need[*]} failed" >&2; exit 1; }
fi
# Daemons the packages started before this script ran are left alone: they listen on port
# 53, the benchmark does not.

# ---------------------------------------------------------------- build
if [ -z "${R53_BIN:-}" ]; then
  command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
  say "building r53 (cargo build --release in $REPO)"
  (cd "$REPO" && cargo build --release --quiet)
  R53_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/r53"
fi
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo "+changes" || true)

# ---------------------------------------------------------------- work dir, ports, cleanup
WORK=$(mktemp -d /tmp/r53-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --capped PCT: every server runs on CPU 0 with PCT% of it (a CPU quota in a cgroup, one
# worker each), and dnsperf alone on CPU 1. Without it, servers and dnsperf share both CPUs
# and all three servers top out where dnsperf does; capped, the server is what runs out, so
# the table compares the servers' own speed on the same CPU budget.
CG_PROCS=""
if [ -n "$CAPPED" ]; then
  [ "$(nproc)" -ge 2 ] || { echo "--capped needs 2 CPUs" >&2; exit 2; }
  WORKERS=1
  PERIOD_US=10000 QUOTA_US=$(( CAPPED * 100 ))
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then   # cgroup v2
    CG_DIR=/sys/fs/cgroup/r53-bench-$$
    mkdir "$CG_DIR"; echo "$QUOTA_US $PERIOD_US" > "$CG_DIR/cpu.max"
  else                                                  # cgroup v1
    CG_DIR=/sys/fs/cgroup/cpu/r53-bench-$$
    mkdir "$CG_DIR"; echo "$PERIOD_US" > "$CG_DIR/cpu.cfs_period_us"; echo "$QUOTA_US" > "$CG_DIR/cpu.cfs_quota_us"
  fi
  CG_PROCS="$CG_DIR/cgroup.procs"
  trap 'cleanup; sleep 0.5; rmdir "$CG_DIR" 2>/dev/null || true' EXIT
fi
srv() { # `srv CMD... &`: runs a server (capped when asked) as the background job itself, so $! is its PID
  if [ -n "$CG_PROCS" ]; then exec sh -c 'echo $$ > "$0" && exec taskset -c 0 "$@"' "$CG_PROCS" "$@"; else exec "$@"; fi
}
client() { # runs the load generator, alone on CPU 1 when servers are capped
  if [ -n "$CG_PROCS" ]; then taskset -c 1 "$@"; else "$@"; fi
}

port_free() { ! ss -Htuln "( sport = :$1 )" | grep -q .; }
next_port() { local p=$1; while ! port_free "$p"; do p=$((p + 1)); done; echo "$p"; }
R53_PORT=$(next_port $((PORT_BASE + 1)))
API_PORT=$(next_port $((R53_PORT + 1)))
NSD_PORT=$(next_port $((API_PORT + 1)))
KNOT_PORT=$(next_port $((NSD_PORT + 1)))
CG_PORT=$(next_port $((KNOT_PORT + 1)))
CG_API_PORT=$(next_port $((CG_PORT + 1)))
RES_PORT=$(next_port $((CG_API_PORT + 1)))
RES_API_PORT=$(next_port $((RES_PORT + 1)))
UB_PORT=$(next_port $((RES_API_PORT + 1)))
UB_CTL_PORT=$(next_port $((UB_PORT + 1)))

# All the processes of a server (NSD forks: main, xfrd, one per server-count).
tree() { echo "$1"; local c; for c in $(pgrep -P "$1" || true); do tree "$c"; done; }
# "RSS PSS" in MiB, summed over the server's processes. PSS splits pages shared between
# NSD's forked processes fairly; RSS counts them once per process.
mem() {
  local rss=0 pss=0 p v
  for p in $(tree "$1"); do
    v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0); rss=$((rss + ${v:-0}))
    v=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0); pss=$((pss + ${v:-0}))
  done
  echo "$((rss / 1024)) $((pss / 1024))"
}
wait_dns() { # port name pid [seconds]: until `dig` gets an address back
  local i
  for i in $(seq 1 $(( ${4:-30} * 20 ))); do
    if dig +short +time=1 +tries=1 @127.0.0.1 -p "$1" h1.bench.test A 2>/dev/null | grep -qE '^[0-9]'; then return 0; fi
    kill -0 "$3" 2>/dev/null || { echo "$2 exited; its log is in $WORK" >&2; exit 1; }
    sleep 0.05
  done
  echo "$2 did not answer on port $1 within ${4:-30} s" >&2; exit 1
}

# ---------------------------------------------------------------- zone and queries
say "generating bench.test. with $NAMES names"
mkdir -p "$WORK/zones" "$WORK/nsd" "$WORK/knot"
python3 "$BENCH_DIR/gen.py" --names "$NAMES" --zone-out "$WORK/zones/bench.test.zone" --queries-out "$WORK/queries.txt"
ZONE_RECORDS=$(grep -c ' IN ' "$WORK/zones/bench.test.zone")

# ---------------------------------------------------------------- servers
write_nsd_conf() { # dir port zonefile
cat > "$1/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$2
    server-count: $WORKERS
    reuseport: yes
    username: ""
    chroot: ""
    database: ""
    zonesdir: "$(dirname "$3")"
    zonelistfile: "$1/zone.list"
    xfrdfile: "$1/xfrd.state"
    xfrdir: "$1"
    pidfile: "$1/nsd.pid"
    logfile: "$1/nsd.log"
    verbosity: 1
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: bench.test
    zonefile: "$3"
EOF
if ! nsd-checkconf "$1/nsd.conf" >/dev/null 2>&1; then  # NSD built without RRL
  sed -i '/rrl-/d' "$1/nsd.conf"
fi
}
write_knot_conf() { # dir port zonefile
cat > "$1/knot.conf" <<EOF
server:
    rundir: "$1"
    listen: 127.0.0.1@$2
    udp-workers: $WORKERS
    tcp-workers: $WORKERS
    background-workers: 1
database:
    storage: "$1"
log:
  - target: stderr
    any: notice
template:
  - id: default
    storage: "$(dirname "$3")"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: bench.test
    file: "$3"
EOF
}
# Unbound forwarding everything to one upstream (the Knot above): a cache in front of it, like
# r53's resolver. "test." is one of Unbound's default local zones (RFC 6761), answered
# NXDOMAIN without asking anyone: `nodefault` lets bench.test. through. Remote control (no
# certificates, loopback) only to read the cache-miss counter.
write_unbound_conf() { # dir port control-port upstream-port
cat > "$1/unbound.conf" <<EOF
server:
    interface: 127.0.0.1@$2
    num-threads: $WORKERS
    so-reuseport: yes
    msg-cache-size: 64m
    rrset-cache-size: 128m
    module-config: "iterator"
    do-not-query-localhost: no
    local-zone: "test." nodefault
    access-control: 127.0.0.0/8 allow
    chroot: ""
    username: ""
    do-daemonize: no
    use-syslog: no
    logfile: ""
    verbosity: 1
    directory: "$1"
    pidfile: "$1/unbound.pid"
remote-control:
    control-enable: yes
    control-interface: 127.0.0.1
    control-port: $3
    control-use-cert: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$4
EOF
unbound-checkconf "$1/unbound.conf" >/dev/null
}
write_nsd_conf "$WORK/nsd" "$NSD_PORT" "$WORK/zones/bench.test.zone"
write_knot_conf "$WORK/knot" "$KNOT_PORT" "$WORK/zones/bench.test.zone"
R53_ARGS=(serve --dns-addr "127.0.0.1:$R53_PORT" --api-addr "127.0.0.1:$API_PORT"
  --data-dir "$WORK/r53-data" --zones-dir "$WORK/zones" --udp-sockets "$WORKERS")
# The resolver comparison: r53 with no zones (so every bench.test. question recurses) and
# Unbound, both forwarding to Knot, both with room for every question of the query file.
mkdir -p "$WORK/res-zones" "$WORK/unbound"
RES_NAMES=$(awk '{print tolower($1), $2}' "$WORK/queries.txt" | sort -u | wc -l)
RES_CACHE=$(( RES_NAMES * 2 > 10000 ? RES_NAMES * 2 : 10000 ))
RES_ARGS=(serve --dns-addr "127.0.0.1:$RES_PORT" --api-addr "127.0.0.1:$RES_API_PORT"
  --data-dir "$WORK/res-data" --zones-dir "$WORK/res-zones" --udp-sockets "$WORKERS"
  --upstream "127.0.0.1:$KNOT_PORT" --recursion-allow 127.0.0.0/8 --cache-size "$RES_CACHE")
write_unbound_conf "$WORK/unbound" "$UB_PORT" "$UB_CTL_PORT" "$KNOT_PORT"

say "starting r53, NSD and Knot"
t0=$(date +%s.%N)
RUST_LOG=warn srv "$R53_BIN" "${R53_ARGS[@]}" >"$WORK/r53.log" 2>&1 & R53_PID=$!; PIDS+=("$R53_PID")
wait_dns "$R53_PORT" r53 "$R53_PID"; R53_START=$(echo "$(date +%s.%N) - $t0" | bc)
t0=$(date +%s.%N)
srv nsd -d -c "$WORK/nsd/nsd.conf" >"$WORK/nsd/out.log" 2>&1 & NSD_PID=$!; PIDS+=("$NSD_PID")
wait_dns "$NSD_PORT" NSD "$NSD_PID"; NSD_START=$(echo "$(date +%s.%N) - $t0" | bc)
t0=$(date +%s.%N)
srv knotd -c "$WORK/knot/knot.conf" >"$WORK/knot/out.log" 2>&1 & KNOT_PID=$!; PIDS+=("$KNOT_PID")
wait_dns "$KNOT_PORT" Knot "$KNOT_PID"; KNOT_START=$(echo "$(date +%s.%N) - $t0" | bc)

# Same answers from all three (sanity: a CNAME, an NXDOMAIN, an AAAA).
for q in "c1.bench.test A" "nx1.bench.test A" "H10.bench.test AAAA"; do
  a=$(dig +norec +noall +answer +comments @127.0.0.1 -p "$R53_PORT" $q | grep -E 'status|IN' | sed 's/id: [0-9]*//' | sort)
  for p in "$NSD_PORT" "$KNOT_PORT"; do
    b=$(dig +norec +noall +answer +comments @127.0.0.1 -p "$p" $q | grep -E 'status|IN' | sed 's/id: [0-9]*//' | sort)
    [ "$a" = "$b" ] || { echo "warning: answers differ for '$q' (r53 vs port $p):" >&2; echo "$a" >&2; echo "$b" >&2; }
  done
done

cat >&2 <<EOF

== settings
machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(uname -r)
zone:    bench.test. $NAMES host names, $ZONE_RECORDS records; $(wc -l < "$WORK/queries.txt") queries
         (80% A, 10% NXDOMAIN, 5% CNAME, 5% AAAA, 1 in 4 names in random case)
r53:     $R53_BIN ${R53_ARGS[*]}   (commit $COMMIT$DIRTY, RUST_LOG=warn)
NSD:     $(nsd -v 2>&1 | head -1): server-count $WORKERS, reuseport yes, $(grep -q rrl-ratelimit "$WORK/nsd/nsd.conf" && echo "rrl-ratelimit 0 (RRL off)" || echo "built without RRL"), database "" (no nsd.db)
Knot:    $(knotd -V 2>&1 | head -1): udp-workers $WORKERS, tcp-workers $WORKERS, background-workers 1, no modules (no RRL)
dnsperf: $(dnsperf -h 2>&1 | grep -m1 Version): -c $CLIENTS (default -q 100 outstanding), -l $DURATION for the maximum rate;
         latency runs: -l $LAT_DURATION -Q <half of NSD's maximum rate in the first pass> -v, per-query latencies
         sorted for mean and 99th percentile. $(if [ -n "$CAPPED" ]; then echo "Capped: each server on CPU 0 with $CAPPED% of it (cgroup CPU quota, ${PERIOD_US} us period), 1 worker; dnsperf alone on CPU 1."; else echo "dnsperf runs on the same $(nproc) CPUs as the servers."; fi)
churn:   www.churn.bench. A, an Alias to churn.elb.r53.internal., on the r53 above; churn.py re-registers the endpoint
         with a new address $CHURN_RATE times a second while dnsperf -m udp -l $DURATION asks only that name (and once without changes)
resolver: r53 ${RES_ARGS[*]}   (RUST_LOG=warn)
Unbound: $(unbound -V 2>&1 | head -1 | sed "s/^Version/version/"): num-threads $WORKERS, so-reuseport yes, msg-cache-size 64m, rrset-cache-size 128m,
         module-config iterator (no DNSSEC), forward-zone "." to Knot, local-zone test. nodefault. Both resolvers
         warmed with one pass of the query file ($RES_NAMES distinct questions), then dnsperf -m udp -l $DURATION
         (dnsperf sets RD), forward and reverse order
EOF

# ---------------------------------------------------------------- DNS runs
RESULTS="$WORK/results.tsv"
: > "$RESULTS"
perf_run() { # proto port extra-args...: prints "qps lost avg_ms"
  local proto=$1 port=$2; shift 2
  client dnsperf -m "$proto" -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -c "$CLIENTS" "$@" 2>&1 |
    awk '/Queries per second/{q=$4} /Queries lost/{l=$3} /Average Latency/ && !a{a=$4*1000} END{printf "%.0f %s %.3f\n", q, l, a}'
}
lat_run() { # proto port rate: prints "sent_qps lost mean_ms p99_ms" from per-query latencies
  local proto=$1 port=$2 rate=$3
  client dnsperf -m "$proto" -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -c "$CLIENTS" -l "$LAT_DURATION" -Q "$rate" -v 2>/dev/null |
    awk '/^> /{print $NF} /Queries per second/{print "QPS", $4 > "/dev/stderr"} /Queries lost/{print "LOST", $3 > "/dev/stderr"}' \
      2>"$WORK/lat.meta" | sort -g > "$WORK/lat.txt"
  awk -v q="$(awk '/QPS/{printf "%.0f", $2}' "$WORK/lat.meta")" -v l="$(awk '/LOST/{print $2}' "$WORK/lat.meta")" \
    '{v[NR]=$1; s+=$1} END{ if (NR==0) {print q, l, "nan nan"; exit}; i=int(NR*0.99); if (i<1) i=1; printf "%s %s %.3f %.3f\n", q, l, s/NR*1000, v[i]*1000}' "$WORK/lat.txt"
}
dnsperf_file() { # queryfile proto port extra-args...: prints "qps lost avg_ms rcodes" (rcodes: NOERROR:n,NXDOMAIN:n)
  local file=$1 proto=$2 port=$3; shift 3
  client dnsperf -m "$proto" -s 127.0.0.1 -p "$port" -d "$file" -c "$CLIENTS" "$@" 2>&1 |
    awk '/Queries per second/{q=$4} /Queries lost/{l=$3} /Average Latency/ && !a{a=$4*1000}
      /Response codes/{sub(/.*Response codes: */, ""); gsub(/ \([0-9.]+%\)/, ""); gsub(/, /, ","); gsub(/ /, ":"); r=$0}
      END{printf "%.0f %s %.3f %s\n", q, l, a, (r == "" ? "none" : r)}'
}
# CPU time (user + system, clock ticks) used so far by all of a server's processes and threads.
# Over a fixed-rate run it gives CPU per query: what each server spends for the same work,
# whether or not the load generator (on the same two cores) can push any server to its limit.
cpu_ticks() {
  local t=0 p v
  for p in $(tree "$1"); do
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}'); t=$((t + ${v:-0}))
  done
  echo "$t"
}
CLK_TCK=$(getconf CLK_TCK)
port_of() { case $1 in r53) echo "$R53_PORT";; NSD) echo "$NSD_PORT";; Knot) echo "$KNOT_PORT";; esac; }
pid_of() { case $1 in r53) echo "$R53_PID";; NSD) echo "$NSD_PID";; Knot) echo "$KNOT_PID";; esac; }

for proto in udp tcp; do
  HALF=""
  for order in forward reverse; do
    if [ $order = forward ]; then servers="r53 NSD Knot"; else servers="Knot NSD r53"; fi
    for s in $servers; do
      say "$proto $order: $s maximum rate (${DURATION}s)"
      read -r qps lost avg <<<"$(perf_run "$proto" "$(port_of $s)" -l "$DURATION")"
      if [ -z "$HALF" ] && [ $s = NSD ]; then HALF=$(( qps / 2 )); fi
      echo "$proto $order $s $qps $lost $avg - - - - $(mem "$(pid_of $s)") -" >> "$RESULTS"
      echo "   $qps q/s, $lost lost, mean $avg ms" >&2
    done
  done
  # Latency at a fixed rate: half of NSD's maximum, the same rate for each server.
  for order in forward reverse; do
    if [ $order = forward ]; then servers="r53 NSD Knot"; else servers="Knot NSD r53"; fi
    for s in $servers; do
      say "$proto $order: $s latency at $HALF q/s (${LAT_DURATION}s)"
      t0=$(cpu_ticks "$(pid_of $s)")
      read -r lq llost lmean lp99 <<<"$(lat_run "$proto" "$(port_of $s)" "$HALF")"
      t1=$(cpu_ticks "$(pid_of $s)")
      cpu_us=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v q="$lq" -v d="$LAT_DURATION" 'BEGIN{ if (q > 0) printf "%.2f", t / hz * 1e6 / (q * d); else print "nan" }')
      awk -v p=$proto -v o=$order -v s=$s -v lq="$lq" -v ll="$llost" -v lm="$lmean" -v l9="$lp99" -v cu="$cpu_us" \
        '$1==p && $2==o && $3==s {$7=lq; $8=ll; $9=lm; $10=l9; $13=cu} {print}' "$RESULTS" > "$RESULTS.new" && mv "$RESULTS.new" "$RESULTS"
      echo "   mean $lmean ms, p99 $lp99 ms, $llost lost, $cpu_us us CPU per query" >&2
    done
  done
done

# ---------------------------------------------------------------- API
say "API: create a zone, then 8 clients upserting single-record batches (${API_DURATION}s)"
API="http://127.0.0.1:$API_PORT"
ZID=$(curl -sf -XPOST "$API/2013-04-01/hostedzone" -H 'Content-Type: application/json' \
  -d "{\"Name\":\"api.bench.\",\"CallerReference\":\"bench-$$-$(date +%s)\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["HostedZone"]["Id"].split("/")[-1])')
API_LINE=$(wrk -t 2 -c 8 -d "$API_DURATION" -s "$BENCH_DIR/api_upsert.lua" "$API/2013-04-01/hostedzone/$ZID/rrset" -- api.bench. | grep API_RESULT)
echo "   $API_LINE" >&2
say "API: acknowledgement to visible answer ($VIS_CHANGES changes, one client)"
VIS_LINE=$(python3 "$BENCH_DIR/visibility.py" --api "127.0.0.1:$API_PORT" --dns "127.0.0.1:$R53_PORT" --zone-id "$ZID" --zone api.bench. --changes "$VIS_CHANGES")
echo "   $VIS_LINE" >&2

# ---------------------------------------------------------------- Alias churn (r53 only)
say "Alias churn: www.churn.bench. A, its endpoint changing $CHURN_RATE times a second (2 x ${DURATION}s)"
python3 "$BENCH_DIR/churn.py" setup --api "127.0.0.1:$API_PORT" --dns "127.0.0.1:$R53_PORT" >/dev/null
echo "www.churn.bench. A" > "$WORK/churn-queries.txt"
# The same name without changes first: what the churn costs.
read -r c0_qps c0_lost _ c0_rc <<<"$(dnsperf_file "$WORK/churn-queries.txt" udp "$R53_PORT" -l "$DURATION")"
echo "   without changes: $c0_qps answers/s, $c0_lost lost ($c0_rc)" >&2
python3 "$BENCH_DIR/churn.py" run --api "127.0.0.1:$API_PORT" --dns "127.0.0.1:$R53_PORT" \
  --rate "$CHURN_RATE" --duration "$DURATION" >"$WORK/churn.out" 2>"$WORK/churn.err" & CHURN_PID=$!; PIDS+=("$CHURN_PID")
read -r c_qps c_lost c_avg c_rc <<<"$(dnsperf_file "$WORK/churn-queries.txt" udp "$R53_PORT" -l "$DURATION")"
wait "$CHURN_PID" || true
if [ -s "$WORK/churn.err" ]; then sed 's/^/   churn.py: /' "$WORK/churn.err" >&2; fi
CHURN_LINE="$(grep CHURN_RESULT "$WORK/churn.out" || echo CHURN_RESULT) qps=$c_qps lost=$c_lost mean_ms=$c_avg rcodes=$c_rc static_qps=$c0_qps static_lost=$c0_lost static_rcodes=$c0_rc duration=$DURATION"
echo "   $CHURN_LINE" >&2

# ---------------------------------------------------------------- resolver cache hits: r53 against Unbound
say "resolver cache hits: r53 (no zones, --cache-size $RES_CACHE) and Unbound, both forwarding to Knot"
RUST_LOG=warn srv "$R53_BIN" "${RES_ARGS[@]}" >"$WORK/r53-resolver.log" 2>&1 & RES_PID=$!; PIDS+=("$RES_PID")
wait_dns "$RES_PORT" "r53 (resolver)" "$RES_PID"
srv unbound -d -c "$WORK/unbound/unbound.conf" >"$WORK/unbound/out.log" 2>&1 & UB_PID=$!; PIDS+=("$UB_PID")
wait_dns "$UB_PORT" Unbound "$UB_PID"
# Same answers from both (status, RA, records with TTLs left out), and r53 really recursing.
res_norm() { awk '/status:/{print $6} /^;; flags:/{print ($0 ~ / ra[ ;]/) ? "ra" : "no-ra"} !/^;/ && NF >= 5 {$2 = ""; $1 = tolower($1); print}' | sort; }
for q in "c1.bench.test A" "nx1.bench.test A" "H10.bench.test AAAA"; do
  a=$(dig +noall +answer +comments @127.0.0.1 -p "$RES_PORT" $q | res_norm)
  b=$(dig +noall +answer +comments @127.0.0.1 -p "$UB_PORT" $q | res_norm)
  [ "$a" = "$b" ] || { echo "warning: resolver answers differ for '$q' (r53 vs Unbound):" >&2; echo "$a" >&2; echo "$b" >&2; }
done
res_misses() { # server: cache misses so far
  case $1 in
    r53) curl -sf "http://127.0.0.1:$RES_API_PORT/v1/resolver/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Misses"])' ;;
    Unbound) unbound-control -c "$WORK/unbound/unbound.conf" stats_noreset | awk -F= '$1=="total.num.cachemiss"{print $2}' ;;
  esac
}
res_port() { case $1 in r53) echo "$RES_PORT";; Unbound) echo "$UB_PORT";; esac; }
res_pid() { case $1 in r53) echo "$RES_PID";; Unbound) echo "$UB_PID";; esac; }
for s in r53 Unbound; do
  read -r wq wl _ _ <<<"$(dnsperf_file "$WORK/queries.txt" udp "$(res_port $s)" -n 1)"
  echo "   $s warmed: one pass of the query file at $wq q/s, $wl lost" >&2
done
declare -A MISSES0
for s in r53 Unbound; do MISSES0[$s]=$(res_misses $s); done
RES_RESULTS="$WORK/resolver.tsv"
: > "$RES_RESULTS"
for order in forward reverse; do
  if [ $order = forward ]; then servers="r53 Unbound"; else servers="Unbound r53"; fi
  for s in $servers; do
    say "resolver $order: $s cache hits, maximum rate (${DURATION}s)"
    read -r qps lost avg rc <<<"$(dnsperf_file "$WORK/queries.txt" udp "$(res_port $s)" -l "$DURATION")"
    echo "$order $s $qps $lost $avg $(mem "$(res_pid $s)") $rc" >> "$RES_RESULTS"
    echo "   $qps q/s, $lost lost, mean $avg ms ($rc)" >&2
  done
done
RES_LINE="RES_RESULT names=$RES_NAMES cache_size=$RES_CACHE duration=$DURATION unbound=$(unbound -V 2>&1 | head -1 | awk '{print $2}')"
for s in r53 Unbound; do RES_LINE="$RES_LINE ${s}_misses=$(( $(res_misses $s) - ${MISSES0[$s]} ))"; done
echo "   $RES_LINE" >&2
kill "$RES_PID" "$UB_PID"; wait "$RES_PID" "$UB_PID" 2>/dev/null || true

# ---------------------------------------------------------------- callgrind (optional)
CG_LINE=""
if [ "$CALLGRIND" = 1 ]; then
  say "callgrind: instructions per UDP query (r53 alone, 1 socket, 20,000 queries)"
  head -20000 "$WORK/queries.txt" > "$WORK/cg-queries.txt"
  CG_OUT="$WORK/callgrind.out"
  # Collect from the start, zero the counters once r53 answers, dump after the queries: the
  # dump holds the cost of serving them (all threads, including sled's idle flusher).
  valgrind --tool=callgrind --callgrind-out-file="$CG_OUT" \
    "$R53_BIN" serve --dns-addr "127.0.0.1:$CG_PORT" --api-addr "127.0.0.1:$CG_API_PORT" \
    --data-dir "$WORK/cg-data" --zones-dir "$WORK/zones" --udp-sockets 1 >"$WORK/cg.log" 2>&1 & CG_PID=$!; PIDS+=("$CG_PID")
  wait_dns "$CG_PORT" "r53 under callgrind" "$CG_PID"
  callgrind_control -z "$CG_PID" >/dev/null
  dnsperf -s 127.0.0.1 -p "$CG_PORT" -d "$WORK/cg-queries.txt" -n 1 -c 1 -Q 2000 -t 30 >"$WORK/cg-dnsperf.txt" 2>&1
  callgrind_control -d "$CG_PID" >/dev/null
  kill "$CG_PID"; wait "$CG_PID" 2>/dev/null || true
  CG_IR=$(awk '/^totals:/{print $2}' "$CG_OUT.1")
  CG_Q=$(awk '/Queries completed/{print $3}' "$WORK/cg-dnsperf.txt")
  CG_LINE="callgrind: $(( CG_IR / CG_Q )) instructions per UDP query ($CG_IR over $CG_Q queries at 2,000 q/s, whole process)"
  echo "   $CG_LINE" >&2
  # Self cost per function. Frames still on a thread's stack at the dump (clone, tokio's worker
  # loop) show their inclusive cost here; they are dropped (anything at 50% or more).
  callgrind_annotate --threshold=100 "$CG_OUT.1" 2>/dev/null | grep -E '^ *[0-9,]+ \( ?[0-9]' |
    grep -v 'PROGRAM TOTALS' | awk '{ if (match($0, /[0-9.]+%/) && substr($0, RSTART, RLENGTH - 1) + 0 < 50) print }' | head -20 |
    sed -E 's#/root/.cargo/registry/src/[^/]*/##; s#/rustc/[0-9a-f]*/##' | cut -c1-200 > "$WORK/cg-top.txt" || true
fi

# ---------------------------------------------------------------- 1,000,000 records (optional)
BIG_LINE=""; BIG_KV=""
if [ "$MILLION" = 1 ]; then
  say "1,000,000 records: start-up to first answer and memory (the main servers are stopped first)"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
  B="$WORK/big"; mkdir -p "$B/zones" "$B/nsd" "$B/knot"
  # 855,000 hosts make ~1,000,000 records (A each, AAAA 1 in 10, TXT 1 in 50, CNAMEs 1 in 20).
  python3 "$BENCH_DIR/gen.py" --names 855000 --zone-out "$B/zones/bench.test.zone" --queries-out "$B/q.txt" --queries 10
  BIG_RECORDS=$(grep -c ' IN ' "$B/zones/bench.test.zone")
  write_nsd_conf "$B/nsd" "$NSD_PORT" "$B/zones/bench.test.zone"
  write_knot_conf "$B/knot" "$KNOT_PORT" "$B/zones/bench.test.zone"
  BIG_ARGS=(serve --dns-addr "127.0.0.1:$R53_PORT" --api-addr "127.0.0.1:$API_PORT" --data-dir "$B/r53-data" --zones-dir "$B/zones" --udp-sockets "$WORKERS")
  timed_start() { # name port cmd...: starts, waits for an answer, sets TS="seconds rss pss", stops
    local name=$1 port=$2 t0 pid; shift 2
    t0=$(date +%s.%N)
    RUST_LOG=warn "$@" >"$B/$name.log" 2>&1 & pid=$!; PIDS+=("$pid")
    wait_dns "$port" "$name" "$pid" 600
    TS="$(printf "%.2f" "$(echo "$(date +%s.%N) - $t0" | bc)") $(mem "$pid")"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  }
  timed_start r53-import "$R53_PORT" "$R53_BIN" "${BIG_ARGS[@]}"; read -r r_imp _ _ <<<"$TS"
  timed_start r53 "$R53_PORT" "$R53_BIN" "${BIG_ARGS[@]}"; read -r r_t r_rss r_pss <<<"$TS"
  # The stops above wrote the start-up snapshot, which every start since has read and kept:
  # it stands until the first change to a zone or record set, so a kill -9 of a start with no
  # change starts from it again. Each kill -9 below comes after an acknowledged change (an
  # UPSERT of one record to bench.test. through the API), which makes that snapshot stale. A
  # running r53 writes a live one once its zones have been quiet for 2 s
  # (--snapshot-quiet-ms): kill -9 one 5 s after its change and time the start that reads it.
  # Then kill -9 one as soon as its change is acknowledged, before a live snapshot: the next
  # start scans sled.
  BIG_API="http://127.0.0.1:$API_PORT"
  CRASH_N=0
  big_upsert() { # one acknowledged UPSERT to bench.test. (a new address each time)
    local zid="" i
    CRASH_N=$((CRASH_N + 1))
    for i in $(seq 1 200); do # the API is bound just after DNS
      zid=$(curl -sf "$BIG_API/2013-04-01/hostedzone" | python3 -c 'import json,sys; print(next(z["Id"].split("/")[-1] for z in json.load(sys.stdin)["HostedZones"] if z["Name"] == "bench.test."))' 2>/dev/null) && break
      sleep 0.05
    done
    [ -n "$zid" ] || { echo "r53's API did not list bench.test.; its log is in $B" >&2; exit 1; }
    curl -sf -XPOST "$BIG_API/2013-04-01/hostedzone/$zid/rrset" -H 'Content-Type: application/json' \
      -d "{\"ChangeBatch\":{\"Changes\":[{\"Action\":\"UPSERT\",\"ResourceRecordSet\":{\"Name\":\"crash.bench.test.\",\"Type\":\"A\",\"TTL\":60,\"ResourceRecords\":[{\"Value\":\"192.0.2.$CRASH_N\"}]}}]}}" |
      grep -q INSYNC || { echo "the UPSERT to bench.test. was not acknowledged; r53's log is in $B" >&2; exit 1; }
  }
  crash_start() { # seconds to wait after an acknowledged change, then kill -9
    RUST_LOG=warn "$R53_BIN" "${BIG_ARGS[@]}" >"$B/r53-crash.log" 2>&1 & crash_pid=$!; PIDS+=("$crash_pid")
    wait_dns "$R53_PORT" "r53 (to be killed)" "$crash_pid" 600
    big_upsert
    sleep "$1"
    kill -9 "$crash_pid"; wait "$crash_pid" 2>/dev/null || true
  }
  crash_start 5
  timed_start r53-live "$R53_PORT" "$R53_BIN" "${BIG_ARGS[@]}"; read -r r_live_t r_live_rss _ <<<"$TS"
  crash_start 0
  timed_start r53-scan "$R53_PORT" "$R53_BIN" "${BIG_ARGS[@]}"; read -r r_scan_t r_scan_rss _ <<<"$TS"
  timed_start nsd "$NSD_PORT" nsd -d -c "$B/nsd/nsd.conf"; read -r n_t n_rss n_pss <<<"$TS"
  timed_start knot "$KNOT_PORT" knotd -c "$B/knot/knot.conf"; read -r k_t k_rss k_pss <<<"$TS"
  BIG_LINE="$BIG_RECORDS records: start-up to first answer / RSS / PSS: r53 (data in sled, after a clean stop: from the start-up snapshot) $r_t s / $r_rss MiB / $r_pss MiB (after a kill -9 once quiet after a change, from the live snapshot: $r_live_t s / $r_live_rss MiB; after a kill -9 right after an acknowledged change, scanning sled: $r_scan_t s / $r_scan_rss MiB; first start, importing the zone file: $r_imp s); NSD (zone file) $n_t s / $n_rss MiB / $n_pss MiB; Knot (zone file) $k_t s / $k_rss MiB / $k_pss MiB"
  BIG_KV="r53_t=$r_t r53_rss=$r_rss r53_live_t=$r_live_t r53_live_rss=$r_live_rss r53_scan_t=$r_scan_t r53_scan_rss=$r_scan_rss knot_t=$k_t knot_rss=$k_rss"
  echo "   $BIG_LINE" >&2
fi

# ---------------------------------------------------------------- table
say "results"
python3 "$BENCH_DIR/table.py" "$RESULTS" \
  --start "r53=$R53_START" --start "NSD=$NSD_START" --start "Knot=$KNOT_START" \
  --api "$API_LINE" --vis "$VIS_LINE" --churn "$CHURN_LINE" --resolver "$RES_RESULTS" --resolver-meta "$RES_LINE" \
  --callgrind "$CG_LINE" --extra "$BIG_LINE" --million "$BIG_KV" \
  --header "$(date -u +%Y-%m-%dT%H:%MZ), commit $COMMIT$DIRTY, $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), bench.test. $NAMES names, dnsperf -c $CLIENTS -l $DURATION, $WORKERS workers each${CAPPED:+, each server capped at $CAPPED% of CPU 0, dnsperf on CPU 1}"
if [ "$CALLGRIND" = 1 ] && [ -s "$WORK/cg-top.txt" ]; then
  echo; echo "callgrind, hottest functions (self instructions):"; cat "$WORK/cg-top.txt"
fi
