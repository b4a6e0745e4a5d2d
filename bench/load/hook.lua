-- wrk script: POSTs the same signed GitHub push to every server under test.
-- Arguments (after `--`): BODY_FILE SIGNATURE DELIVERY_MODE RUN_TAG, or just GET
--   DELIVERY_MODE "unique": every request gets a new X-GitHub-Delivery (the deploy path
--   de-duplicates by it); "fixed": the same one for every request.
-- At the end it prints one line `RESULT requests=… duration_us=… rps=… p50_us=… p99_us=…
-- errors=… non2xx_unknown` for bench/run.sh to read.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  if args[1] == "GET" then
    -- `GET` instead of a body file: a plain GET of the URL (the floor run, /healthz).
    wrk.method = "GET"
    fixed = wrk.format()
    return
  end
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "GitHub-Hookshot/a1b2c3d"
  wrk.headers["X-GitHub-Event"] = "push"
  wrk.headers["X-GitHub-Hook-ID"] = "520147622"
  wrk.headers["X-Hub-Signature-256"] = args[2]
  unique = args[3] == "unique"
  prefix = (args[4] or "run") .. "-t" .. tostring(tid) .. "-"
  wrk.headers["X-GitHub-Delivery"] = prefix .. "fixed"
  fixed = wrk.format()
end

function request()
  if not unique then
    return fixed
  end
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = prefix .. counter
  return wrk.format()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d mean_us=%.1f errors=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect + e.read + e.write + e.timeout))
end
