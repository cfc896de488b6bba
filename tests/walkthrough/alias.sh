#!/usr/bin/env bash
# The Alias walk-through in README.md: two web backends behind `r53 lb`, a database primary and
# standby under `r53 rds`, example.com's apex an Alias to the LB and db.example.com an Alias to
# the database writer. Stops a backend, the primary and the LB, and shows the answers follow.
# Run from the repository root after `cargo build --release`; uses ports 5300, 8053, 8054,
# 8080 and 127.0.0.x addresses. Backends and "databases" are python3 http.server processes.
ZONES=$(pwd)/zones
set -u
R53=$(realpath "${R53:-target/release/r53}")
WORK=$(mktemp -d); cd "$WORK"; mkdir b1 b2; echo "hello from backend 1" > b1/index.html; echo "hello from backend 2" > b2/index.html
$R53 serve --dns-addr 127.0.0.1:5300 --data-dir "$WORK/data" --zones-dir "$ZONES" --no-recursion >serve.log 2>&1 &
SERVE=$!
(cd b1 && exec python3 -m http.server 9001 --bind 127.0.0.21 >/dev/null 2>&1) & B1=$!
(cd b2 && exec python3 -m http.server 9002 --bind 127.0.0.22 >/dev/null 2>&1) & B2=$!
python3 -m http.server 5432 --bind 127.0.0.31 >/dev/null 2>&1 & P=$!
python3 -m http.server 5432 --bind 127.0.0.32 >/dev/null 2>&1 & S=$!
until curl -s http://127.0.0.1:8053/2013-04-01/hostedzone >/dev/null; do sleep 0.1; done
echo '$ r53 lb --name web --listen 127.0.0.4:8080 --target 127.0.0.21:9001 --target 127.0.0.22:9002 --health-interval 500ms &'
$R53 lb --name web --listen 127.0.0.4:8080 --target 127.0.0.21:9001 --target 127.0.0.22:9002 --health-interval 500ms >lb.log 2>&1 & LB=$!
echo '$ r53 rds --name mydb --primary 127.0.0.31:5432 --standby 127.0.0.32:5432 --check-interval 500ms &'
$R53 rds --name mydb --primary 127.0.0.31:5432 --standby 127.0.0.32:5432 --check-interval 500ms >rds.log 2>&1 & RDS=$!
sleep 2
echo '$ curl -s http://127.0.0.1:8053/v1/endpoints | python3 -m json.tool'
curl -s http://127.0.0.1:8053/v1/endpoints | python3 -m json.tool
cat > batch.json <<'B'
{
  "Comment": "apex to the load balancer, db to the database writer",
  "Changes": [
    {"Action": "UPSERT", "ResourceRecordSet": {"Name": "example.com.", "Type": "A",
      "AliasTarget": {"HostedZoneId": "ZR53ELBENDPOINTS", "DNSName": "web.elb.r53.internal.", "EvaluateTargetHealth": true}}},
    {"Action": "UPSERT", "ResourceRecordSet": {"Name": "db.example.com.", "Type": "A",
      "AliasTarget": {"HostedZoneId": "ZR53RDSENDPOINTS", "DNSName": "mydb.rds.r53.internal.", "EvaluateTargetHealth": true}}}
  ]
}
B
echo '$ cat batch.json'; cat batch.json
echo '$ r53 change example.com --file batch.json'
$R53 change example.com --file batch.json
echo '$ dig +noall +answer @127.0.0.1 -p 5300 example.com db.example.com'
dig +noall +answer @127.0.0.1 -p 5300 example.com db.example.com
echo '$ for i in 1 2 3 4; do curl -s http://example.com:8080/ --resolve example.com:8080:$(dig +short @127.0.0.1 -p 5300 example.com); done'
for i in 1 2 3 4; do curl -s http://example.com:8080/ --resolve example.com:8080:$(dig +short @127.0.0.1 -p 5300 example.com); done
echo '$ kill %backend-1   # stop backend 1; the LB health checks notice within 2 x 500 ms'
kill $B1; sleep 1.5
echo '$ for i in 1 2 3 4; do curl -s http://example.com:8080/ --resolve example.com:8080:127.0.0.4; done'
for i in 1 2 3 4; do curl -s http://example.com:8080/ --resolve example.com:8080:127.0.0.4; done
echo '$ kill %primary   # stop the database primary; r53 rds promotes the standby within 3 x 500 ms'
kill $P; sleep 2
echo '$ dig +noall +answer @127.0.0.1 -p 5300 db.example.com'
dig +noall +answer @127.0.0.1 -p 5300 db.example.com
echo '$ kill %lb   # stop the LB: it deregisters, and the apex has nothing to answer'
kill $LB; sleep 1
echo '$ dig +noall +answer +authority @127.0.0.1 -p 5300 example.com'
dig +noall +answer +authority @127.0.0.1 -p 5300 example.com
kill $RDS $B2 $S $SERVE 2>/dev/null; wait 2>/dev/null
