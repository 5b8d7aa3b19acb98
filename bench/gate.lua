-- wrk script: POST canonical stage events, a different deal each request, a mix of
-- registered (allowed) and unregistered (blocked) deals, so every request is a real
-- decision with a look-up and a committed log row.
local counter = 0
local threads = 0
-- Each wrk thread gets its own id and random seed, so event ids never repeat (a repeated
-- event id would be answered as a cheap replay, flattering the numbers).
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
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
  local reg = (counter % 2 == 0) and '"O1000001"' or 'null'
  local body = string.format(
    '{"event_id":"b-%d-%d","opportunity":{"id":"BENCH-%d","amount":"120000.00","currency":"USD",' ..
    '"owner":"rep%d@example.com","clouds":["aws"],"registrations":{"aws":%s}},' ..
    '"from_stage":"Qualification","to_stage":"Demo"}',
    math.random(1, 1000000000), counter, counter, counter % 50, reg)
  return wrk.format(nil, "/v1/gate/stage", nil, body)
end
