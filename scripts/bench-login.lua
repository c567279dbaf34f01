-- wrk script for scripts/bench: POSTs one login over and over and counts
-- the answers that have the expected status (BENCH_STATUS), so that a 503
-- from a full hashing pool or a 429 is never counted as a login.
local threads = {}

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"username":"%s","password":"%s"}',
  os.getenv("BENCH_USER"), os.getenv("BENCH_PASSWORD"))

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wanted = tonumber(os.getenv("BENCH_STATUS"))
  matched = 0
  other = 0
end

function response(status, headers, body)
  if status == wanted then
    matched = matched + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local m, o = 0, 0
  for _, t in ipairs(threads) do
    m = m + t:get("matched")
    o = o + t:get("other")
  end
  io.write(string.format("matched=%d other=%d seconds=%.3f\n",
    m, o, summary.duration / 1e6))
end
