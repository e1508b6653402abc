-- wrk script for the gateway benchmarks: POST one GraphQL operation per request.
--
-- Environment (set by benchmarks/load.py):
--   BENCH_BODY       JSON body; "@KEY@" becomes a key unique to this request (thread id and
--                    a per-thread counter), "@CUSTOMER@" a customer id from the pre-enrolled
--                    pool: BENCH_PREFIX .. (BENCH_FIRST + n), n = counter mod BENCH_CUSTOMERS
--                    (offset per thread, so threads do not walk the pool in step)
--   BENCH_TOKEN      bearer token (a real JWT from /oauth/token); empty: no Authorization;
--                    several separated by spaces: requests take them in turn (the hot-partner
--                    benchmark's spread run: one token per partner)
--   BENCH_OK         a string every successful response body contains (e.g. "EarnPointsSuccess")
--   BENCH_RATE       total requests per second to pace at; 0 runs unpaced (closed loop, peak)
--   BENCH_RUN        a run id, so keys never repeat between runs on one database
--
-- Pacing (the "70 % of peak" runs): wrk 4.1 has no rate option (that is wrk2), but a script's
-- delay() hook returns how many milliseconds to wait before a connection's next request. Each
-- thread keeps a schedule of send slots spaced 1/(rate/threads) apart; every delay() call takes
-- the next slot and waits until it (never for a slot already in the past, so a slow response
-- does not cause a catch-up burst). Wall time comes from clock_gettime through LuaJIT's FFI.
-- Latency is measured by wrk from the moment the request is written, as in the unpaced runs.

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  body_template = os.getenv("BENCH_BODY")
  token = os.getenv("BENCH_TOKEN") or ""
  ok_marker = os.getenv("BENCH_OK") or ""
  prefix = os.getenv("BENCH_PREFIX") or "c"
  customers = tonumber(os.getenv("BENCH_CUSTOMERS") or "1")
  first = tonumber(os.getenv("BENCH_FIRST") or "0")
  run_id = os.getenv("BENCH_RUN") or "r"
  local rate = tonumber(os.getenv("BENCH_RATE") or "0")
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  interval_ms = rate > 0 and (1000.0 * nthreads / rate) or 0
  next_slot = 0
  counter = 0
  ok = 0
  bad = 0
  sample = ""
  headers = { ["Content-Type"] = "application/json" }
  tokens = {}
  for t in token:gmatch("%S+") do table.insert(tokens, "Bearer " .. t) end
end

function request()
  counter = counter + 1
  local n = (counter + tid * 7919) % customers
  local b = body_template:gsub("@KEY@", run_id .. "-" .. tid .. "-" .. counter)
  b = b:gsub("@CUSTOMER@", prefix .. (first + n))
  if #tokens > 0 then headers["Authorization"] = tokens[counter % #tokens + 1] end
  return wrk.format("POST", "/graphql", headers, b)
end

function delay()
  if interval_ms == 0 then return 0 end
  local now = now_ms()
  local slot = next_slot > now and next_slot or now
  next_slot = slot + interval_ms
  return math.floor(slot - now + 0.5)
end

function response(status, headers, body)
  if status == 200 and (ok_marker == "" or body:find(ok_marker, 1, true)) then
    ok = ok + 1
  else
    bad = bad + 1
    if sample == "" then sample = tostring(status) .. " " .. body:sub(1, 300) end
  end
end

function done(summary, latency, requests)
  local ok_total, bad_total, first_bad = 0, 0, ""
  for _, t in ipairs(threads) do
    ok_total = ok_total + t:get("ok")
    bad_total = bad_total + t:get("bad")
    local s = t:get("sample")
    if first_bad == "" and s ~= nil then first_bad = s end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "ok": %d, "bad": %d, ' ..
    '"socket_errors": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d, ' ..
    '"sample_bad": "%s"}\n',
    summary.requests, summary.duration, ok_total, bad_total,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, (first_bad:gsub('[^%w %.,:_%-]', '?'))))
end
