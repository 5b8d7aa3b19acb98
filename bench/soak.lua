-- wrk script for bench/soak.sh: canonical stage events, each with its own event id, for
-- deals BENCH-i registered as O(3000000+i) in the fake ACE (which fails some of those ids on
-- purpose), plus a few malformed bodies. Counts answers by status per thread; done() prints
-- them with the latency percentiles as "key value" lines for soak.sh.
local counter = 0
local threads = {}
statuses = {} -- a global: done() reads each thread's with thread:get
local ids = tonumber(os.getenv("DG_SOAK_IDS") or "1000")
local phase = os.getenv("DG_SOAK_PHASE") or "s"

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0))
end

local token = os.getenv("DG_BENCH_TOKEN") or ""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end

request = function()
  counter = counter + 1
  if counter % 20 == 0 then -- 5 %: a body cut short
    return wrk.format(nil, "/v1/gate/stage", nil, '{"event_id":"x","opportunity":{"id":')
  end
  local i = math.random(0, ids - 1)
  local body = string.format(
    '{"event_id":"%s-%d-%d","opportunity":{"id":"BENCH-%d","amount":"120000.00",' ..
    '"currency":"USD","clouds":["aws"],"registrations":{"aws":"O%d"}},' ..
    '"from_stage":"Qualification","to_stage":"Demo"}',
    phase, tid or 0, counter, i, 3000000 + i)
  return wrk.format(nil, "/v1/gate/stage", nil, body)
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s or {}) do total[k] = (total[k] or 0) + v end
  end
  for k, v in pairs(total) do io.write(string.format("status %d %d\n", k, v)) end
  io.write(string.format("requests %d\n", summary.requests))
  io.write(string.format("duration_us %d\n", summary.duration))
  io.write(string.format("errors_connect %d\n", summary.errors.connect))
  io.write(string.format("errors_read %d\n", summary.errors.read))
  io.write(string.format("errors_write %d\n", summary.errors.write))
  io.write(string.format("errors_timeout %d\n", summary.errors.timeout))
  io.write(string.format("p50_us %d\n", latency:percentile(50)))
  io.write(string.format("p99_us %d\n", latency:percentile(99)))
  io.write(string.format("max_us %d\n", latency.max))
end
