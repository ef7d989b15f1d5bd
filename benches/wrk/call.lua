-- wrk script: call the next patient of the treatment queue.
--   wrk -t1 -c1 -d5s --latency -s benches/wrk/call.lua \
--       http://127.0.0.1:8080/api/v1/units/pa/call
-- Pre-fill the queue first (admit.lua), so every call finds someone: the
-- summary counts 204 No Content (queue empty) and any other non-200 answer.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  empty = 0
  other = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"room":"Consultório 1"}'
end

function response(status, headers, body)
  if status == 204 then
    empty = empty + 1
  elseif status ~= 200 then
    other = other + 1
  end
end

function done(summary, latency, requests)
  local e, o = 0, 0
  for _, t in ipairs(threads) do
    e = e + t:get("empty")
    o = o + t:get("other")
  end
  io.write(string.format("calls: %d requests, %d found the queue empty (204), %d other non-200\n",
    summary.requests, e, o))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("  p%g: %.3f ms\n", p, latency:percentile(p) / 1000))
  end
end
