-- wrk script: every request is a ChangeResourceRecordSets call with a single-record UPSERT
-- batch. Each connection cycles through its own 1,000 names (w<thread>-<n>.<zone>) with a new
-- address every time, so consecutive changes never collide. Non-2xx answers are counted by
-- wrk ("Non-2xx or 3xx responses"); done() prints one API_RESULT line.
--   wrk -t 2 -c 8 -d 10 -s api_upsert.lua http://127.0.0.1:PORT/2013-04-01/hostedzone/ZID/rrset <zone.>
-- globals on purpose: wrk runs this file in one Lua state per thread and setup() reaches a
-- thread's globals through thread:set.
counter = 0
zone = "api.bench."
tid = 0
local threads = {}

function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
  table.insert(threads, thread)
end

function init(args)
  if args[1] then zone = args[1] end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local name = string.format("w%d-%d.%s", tid, counter % 1000, zone)
  local ip = string.format("10.%d.%d.%d", tid % 256, math.floor(counter / 256) % 256, counter % 256)
  local body = string.format(
    '{"ChangeBatch":{"Changes":[{"Action":"UPSERT","ResourceRecordSet":{"Name":"%s","Type":"A","TTL":60,"ResourceRecords":[{"Value":"%s"}]}}]}}',
    name, ip)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  io.write(string.format("API_RESULT requests=%d duration_us=%d non2xx=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
