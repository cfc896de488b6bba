#!/usr/bin/env bash
# The API under hostile input (issue 7, item 4): schemathesis generates requests from
# api/openapi.yaml, valid and invalid, against a live `r53 serve`, and fails on any 5xx, on any
# response that does not match the spec, and on any error whose body is not Route 53's
# `{"Error": {"Type", "Code", "Message"}}` (the custom check in hooks.py).
#
# Usage: tests/api-fuzz/run.sh [--max-examples N] [--quick] [--seed N] [--workers N] [--no-stateful]
#                              [-- EXTRA SCHEMATHESIS ARGS]
#   --max-examples N  test cases per operation (default 100)
#   --quick           20 cases per operation and no stateful phase, for CI-sized runs
#   --seed N          reproduce a run (schemathesis prints the seed it used)
#   --workers N       concurrent schemathesis workers (default 1: a second one was slower on two cores)
# Environment:
#   R53_BIN    an r53 binary to test (default: `cargo build --release` at the repo root)
#   R53_VENV   where the Python venv with schemathesis lives (kept between runs); default: a
#              temporary directory removed at exit
#   SCHEMATHESIS_VERSION  the version to install (default pinned below)
set -euo pipefail

# Pinned so that a new schemathesis release cannot change what a run checks; 4.x is the CLI
# (`--phases`, `--checks`, `@schemathesis.check` hooks) this script is written against.
SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

max_examples=100
workers=1
stateful=1
seed=()
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --max-examples) max_examples="$2"; shift 2 ;;
        --max-examples=*) max_examples="${1#*=}"; shift ;;
        --quick) max_examples=20; stateful=0; shift ;;
        --seed) seed=(--seed "$2"); shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --no-stateful) stateful=0; shift ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

work="$(mktemp -d "${TMPDIR:-/tmp}/r53-api-fuzz.XXXXXX")"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- schemathesis in a venv -------------------------------------------------------------
venv="${R53_VENV:-$work/venv}"
if [[ ! -x "$venv/bin/schemathesis" ]] \
    || [[ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$SCHEMATHESIS_VERSION" ]]; then
    echo "== installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# --- the server ---------------------------------------------------------------------------
if [[ -n "${R53_BIN:-}" ]]; then
    bin="$R53_BIN"
else
    echo "== cargo build --release"
    (cd "$root" && cargo build --release --quiet)
    bin="$root/target/release/r53"
fi

mkdir -p "$work/zones" "$work/data"
# Port 0 for both: r53 binds UDP and TCP DNS on one port even then, and logs what it bound.
"$bin" serve \
    --dns-addr 127.0.0.1:0 --api-addr 127.0.0.1:0 \
    --data-dir "$work/data" --zones-dir "$work/zones" \
    --no-recursion --ns-name ns1.fuzz.test. \
    --vpc vpc-fuzz=10.99.0.0/16 \
    >"$work/server.log" 2>&1 &
server_pid=$!

api=""
for _ in $(seq 1 100); do
    api="$(sed -n 's/.*serving the API api\.addr=\([0-9.:]*\).*/\1/p' "$work/server.log" | head -n1)"
    [[ -n "$api" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "r53 did not start" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$api" ]] || { cat "$work/server.log" >&2; echo "r53 did not log its API address" >&2; exit 1; }
base="http://$api"
echo "== r53 serving the API at $base (its log tail is printed on failure)"

# Some state for the generated requests to find: a public zone with records, a private zone,
# a VPC, an endpoint, a change. Without it nearly every path parameter is a 404 and little code
# is reached, so their ids go into a schemathesis config as dictionaries that the generator
# draws path parameters from half of the time (the other half stays random).
seed_state() {
    "$venv/bin/python" - "$base" "$work/schemathesis.toml" <<'PY'
import json, sys, urllib.request
base, config = sys.argv[1], sys.argv[2]
def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")
zone = call("POST", "/2013-04-01/hostedzone", {"Name": "fuzz.test", "CallerReference": "seed-1"})
zid = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
call("PUT", "/v1/endpoints/lb-1.elb.r53.internal.", {"Kind": "load-balancer",
     "Addresses": [{"Address": "192.0.2.80", "Healthy": True}], "TTL": 60, "LeaseSeconds": 3600})
change = call("POST", f"/2013-04-01/hostedzone/{zid}/rrset", {"ChangeBatch": {"Changes": [
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "www.fuzz.test.", "Type": "A", "TTL": 60,
        "ResourceRecords": [{"Value": "192.0.2.1"}]}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "fuzz.test.", "Type": "MX", "TTL": 60,
        "ResourceRecords": [{"Value": "10 mail.fuzz.test."}]}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "lb.fuzz.test.", "Type": "A",
        "AliasTarget": {"HostedZoneId": "ZR53ELBENDPOINTS", "DNSName": "lb-1.elb.r53.internal.",
                        "EvaluateTargetHealth": False}}},
]}})
cid = change["ChangeInfo"]["Id"].rsplit("/", 1)[-1]
private = call("POST", "/2013-04-01/hostedzone", {"Name": "private.fuzz", "CallerReference": "seed-2",
     "HostedZoneConfig": {"PrivateZone": True}, "VPC": {"VPCRegion": "us-east-1", "VPCId": "vpc-fuzz"}})
pid = private["HostedZone"]["Id"].rsplit("/", 1)[-1]
call("PUT", "/v1/vpcs/vpc-spare", {"Cidrs": ["10.98.0.0/16"]})
ids = [zid, pid, cid]
with open(config, "w") as f:
    f.write("[dictionaries.ids]\nvalues = %s\n" % json.dumps(ids))
    f.write("[dictionaries.endpoints]\nvalues = %s\n" % json.dumps(["lb-1.elb.r53.internal."]))
    f.write("[dictionaries.vpcs]\nvalues = %s\n" % json.dumps(["vpc-fuzz", "vpc-spare"]))
    f.write("[parameters]\n")
    f.write('"path.Id" = { dictionary = "ids", probability = 0.5 }\n')
    f.write('"path.DNSName" = { dictionary = "endpoints", probability = 0.5 }\n')
    f.write('"path.VPCId" = { dictionary = "vpcs", probability = 0.5 }\n')
print(f"seeded zones {zid} (public), {pid} (private), change {cid}")
PY
}
seed_state || echo "   (seeding state failed; fuzzing anyway)"

phases="examples,coverage,fuzzing"
[[ "$stateful" == 1 ]] && phases="$phases,stateful"

checks="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection,route53_error_shape"

echo "== schemathesis $SCHEMATHESIS_VERSION: $max_examples examples per operation, phases $phases"
set +e
(
    cd "$work"
    # The hooks module is found on PYTHONPATH by name.
    PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=hooks \
        "$venv/bin/schemathesis" run "$base/openapi.yaml" \
        --url "$base" \
        --checks "$checks" \
        --phases "$phases" \
        --max-examples "$max_examples" \
        --workers "$workers" \
        --request-timeout 10 \
        --generation-database none \
        --suppress-health-check too_slow,filter_too_much \
        --no-color \
        "${seed[@]}" "${extra[@]}"
)
status=$?
set -e

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "r53 exited during the run:" >&2
    tail -n 50 "$work/server.log" >&2
    status=1
fi
if grep -q 'panicked' "$work/server.log"; then
    echo "r53 logged a panic:" >&2
    grep -A5 'panicked' "$work/server.log" >&2
    status=1
fi
if [[ "$status" != 0 ]]; then
    echo "== FAILED (server log tail follows)" >&2
    tail -n 30 "$work/server.log" >&2
fi
exit "$status"
