-- bench/origin/paths.lua: a wrk script that requests paths from a pregenerated list.
--
--   wrk -t T -c C … -s bench/origin/paths.lua URL -- LIST PREFIX MODE T C
--
-- LIST holds one relative path per line (`bench/360p/00042.ts`); PREFIX goes in front of each
-- (`/v/` for StreamGate, `/` for nginx), so both servers get the same sequence. Thread k of T
-- starts at line 1 + floor(k·n/T).
--
--   cycle  walks the list from there, wrapping around, for as long as wrk runs (-d).
--   once   requests each line of the thread's own contiguous share once, in order. When a
--          connection asks for more after the share is used up, its previous response has
--          arrived, and it is parked on a request that never ends (no blank line after the
--          headers), so it cannot ask again. When all C/T connections of the thread are parked,
--          every request of the share has been answered: the thread notes the time, prints
--          `origin-bench-thread-done`, and stops. wrk's main thread still sleeps for -d (it always
--          does), so the caller sends wrk SIGINT once every thread is done, and the figures use
--          the threads' own clock (first request → last answer), not wrk's run time.
--
-- There is no response() hook on purpose: with one, wrk copies every header and body into Lua,
-- which would cost the load generator more than the servers spend. done() prints one line,
-- `origin-bench {…}` (JSON), with wrk's totals, latency percentiles and errors.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } origin_bench_timespec;
  int clock_gettime(int clock, origin_bench_timespec *ts);
]]
local clock = ffi.new("origin_bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC: one clock for every thread
  return tonumber(clock.tv_sec) * 1000000 + math.floor(tonumber(clock.tv_nsec) / 1000)
end

-- Setup and done run in wrk's main Lua state; the threads are kept to read their clocks in done().
local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  threads[#threads + 1] = thread
end

-- Thread state.
local requests = {}     -- the sequence, as ready-made HTTP requests (one string per distinct path)
local position, last = 1, 0
local once = false
local parked_request    -- "once": a request without its final blank line; never answered
local per_thread = 0    -- "once": this thread's connections
local parked = 0
local verifying         -- wrk calls request() once in thread 0 before it starts, to check it

function init(args)
  local list, prefix, mode = args[1], args[2], args[3]
  local thread_count, connections = tonumber(args[4]), tonumber(args[5])
  if not (list and prefix and mode and thread_count and connections) then
    error("usage: wrk … -s paths.lua URL -- LIST PREFIX cycle|once THREADS CONNECTIONS")
  end
  local formatted = {}
  for line in io.lines(list) do
    if line ~= "" then
      local request = formatted[line]
      if request == nil then
        request = wrk.format("GET", prefix .. line)
        formatted[line] = request
      end
      requests[#requests + 1] = request
    end
  end
  local n = #requests
  if n == 0 then error(list .. ": no paths") end
  local index = thread_index or 0
  verifying = index == 0
  position = math.floor(index * n / thread_count) + 1
  if mode == "once" then
    once = true
    last = math.floor((index + 1) * n / thread_count)
    per_thread = math.floor(connections / thread_count)
    local full = wrk.format("GET", prefix .. "parked")
    parked_request = full:sub(1, #full - 2) -- drop the blank line that ends the headers
  elseif mode == "cycle" then
    last = n
  else
    error("mode must be cycle or once, not " .. mode)
  end
end

function request()
  if verifying then
    verifying = false
    return requests[position]
  end
  if once then
    if t_first == nil then t_first = now_us() end
    if position > last then
      parked = parked + 1
      if parked == per_thread then
        t_last = now_us()
        io.write(string.format("origin-bench-thread-done %d\n", thread_index or 0))
        io.stdout:flush()
        wrk.thread:stop()
      end
      return parked_request
    end
    local request = requests[position]
    position = position + 1
    return request
  end
  local request = requests[position]
  position = position + 1
  if position > last then position = 1 end
  return request
end

function done(summary, latency, _)
  local first, final
  for _, thread in ipairs(threads) do
    local a, b = thread:get("t_first"), thread:get("t_last")
    if a and (first == nil or a < first) then first = a end
    if b and (final == nil or b > final) then final = b end
  end
  local elapsed = (first and final) and (final - first) or -1
  local e = summary.errors
  io.write(string.format(
    'origin-bench {"requests":%d,"duration_us":%d,"elapsed_us":%d,"bytes":%d,' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, elapsed, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
