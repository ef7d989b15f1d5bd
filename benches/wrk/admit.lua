-- wrk script: concurrent durable admissions.
--   wrk -t2 -c64 -d20s --latency -s benches/wrk/admit.lua \
--       http://127.0.0.1:8080/api/v1/units/pa/patients
-- Every request admits a new green patient ("Paciente N"); the summary at the
-- end counts answers other than 201 Created, which must be zero.
-- A number after `--` paces each connection: it waits that many ms after each
-- answer (`-c16 ... -- 10` makes ~1 400 admissions/s), for latencies at a
-- steady rate below saturation instead of at it.

local threads = {}
local id = 0

function setup(thread)
  id = id + 1
  thread:set("tid", id)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  not_created = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  -- wrk looks for `delay` after init, so an unpaced run has none at all.
  local pause = tonumber(args[1] or "")
  if pause and pause > 0 then
    delay = function() return pause end
  end
end

function request()
  counter = counter + 1
  local body = string.format('{"name":"Paciente %d-%d","colour":"green"}', tid, counter)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 201 then
    not_created = not_created + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("not_created")
  end
  io.write(string.format("admissions: %d requests, %d not 201\n", summary.requests, bad))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("  p%g: %.3f ms\n", p, latency:percentile(p) / 1000))
  end
end
