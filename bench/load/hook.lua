-- wrk script: POSTs the same signed GitHub push to every server under test.
-- Arguments (after `--`): BODY_FILE SIGNATURE DELIVERY_MODE RUN_TAG, or just GET
--   DELIVERY_MODE "unique": every request is a push of its own: a new X-GitHub-Delivery
--   and a new `before` (the deploy path de-duplicates by both), signed anew with the
--   secret given as SIGNATURE (HMAC from the libcrypto wrk is linked with, same body
--   size); "fixed": the same request every time.
-- At the end it prints one line `RESULT requests=… duration_us=… rps=… p50_us=… p99_us=…
-- errors=… non2xx_unknown` for bench/run.sh to read.

local threads = {}
local counter = 0

local ffi = require("ffi")
ffi.cdef [[
const void *EVP_sha256(void);
unsigned char *HMAC(const void *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md,
                    unsigned int *md_len);
]]
local crypto
local function libcrypto()
  if not crypto then
    local ok = pcall(function() return ffi.C.HMAC end)
    crypto = ok and ffi.C or ffi.load("crypto")
  end
  return crypto
end
local md = ffi.new("unsigned char[32]")
local md_len = ffi.new("unsigned int[1]")

-- `sha256=<hex HMAC-SHA256(secret, body)>`, GitHub's X-Hub-Signature-256.
local function sign(secret, body)
  local c = libcrypto()
  assert(c.HMAC(c.EVP_sha256(), secret, #secret, body, #body, md, md_len) ~= nil)
  local hex = {}
  for i = 0, 31 do
    hex[i + 1] = string.format("%02x", md[i])
  end
  return "sha256=" .. table.concat(hex)
end

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
  if unique then
    secret = args[2]
    template = wrk.body
    before = assert(template:match('"before": *"(%x+)"'), "the push has no before")
    -- A number of this run, so two runs never send the same push.
    run = os.time() % 0x100000000
  end
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
  local from = string.format("%08x%08x%024x", run, tid, counter)
  local body = template:gsub(before, from, 1)
  wrk.headers["X-Hub-Signature-256"] = sign(secret, body)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d mean_us=%.1f errors=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect + e.read + e.write + e.timeout))
end
