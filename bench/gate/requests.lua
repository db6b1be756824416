-- bench/gate/requests.lua: a wrk script that sends requests from a pregenerated list.
--
--   wrk -t T -c C … -s bench/gate/requests.lua URL -- LIST MODE T C
--
-- LIST holds one request per line, four fields separated by tabs: METHOD, PATH, TOKEN (sent as
-- `Authorization: Bearer TOKEN`; empty for none) and BODY (sent as JSON; empty for none; a body
-- is one line, which JSON allows: json.dumps escapes newlines and tabs). Thread k of T starts at
-- line 1 + floor(k·n/T).
--
--   cycle  walks the list from there, wrapping around, for as long as wrk runs (-d): the key
--          requests, a hundred tokens over and over.
--   once   sends each line of the thread's own contiguous share exactly once, in order: the
--          sign-ins (each signed message and its nonce can be used once) and the 10,000 key
--          requests of the RPC count. When a connection asks for more after the share is used
--          up, its previous response has arrived, and it is parked on a request that never ends
--          (no blank line after the headers), so it cannot ask again. When all C/T connections of
--          the thread are parked, every request of the share has been answered: the thread notes
--          the time, prints `gate-bench-thread-done`, and stops. wrk's main thread still sleeps for
--          -d, so the caller sends wrk SIGINT once every thread is done, and the rate uses the
--          threads' own clock (first request → last answer), not wrk's run time.
--
-- There is no response() hook on purpose (wrk would copy every response into Lua): wrk's own
-- count of non-2xx/3xx answers is the error count. done() prints one line, `gate-bench {…}` (JSON),
-- with wrk's totals, latency percentiles and errors.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } gate_bench_timespec;
  int clock_gettime(int clock, gate_bench_timespec *ts);
]]
local clock = ffi.new("gate_bench_timespec")
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
local requests = {}     -- the sequence, as ready-made HTTP requests (identical lines share one string)
local position, last = 1, 0
local once = false
local parked_request    -- "once": a request without its final blank line; never answered
local per_thread = 0    -- "once": this thread's connections
local parked = 0
local verifying         -- wrk calls request() once in thread 0 before it starts, to check it

local function split_tabs(line)
  local fields, start = {}, 1
  while true do
    local tab = line:find("\t", start, true)
    if tab == nil then
      fields[#fields + 1] = line:sub(start)
      return fields
    end
    fields[#fields + 1] = line:sub(start, tab - 1)
    start = tab + 1
  end
end

function init(args)
  local list, mode = args[1], args[2]
  local thread_count, connections = tonumber(args[3]), tonumber(args[4])
  if not (list and mode and thread_count and connections) then
    error("usage: wrk … -s requests.lua URL -- LIST cycle|once THREADS CONNECTIONS")
  end
  local formatted = {}
  for line in io.lines(list) do
    if line ~= "" then
      local request = formatted[line]
      if request == nil then
        local fields = split_tabs(line)
        local method, path, token, body = fields[1], fields[2], fields[3] or "", fields[4] or ""
        local headers = {}
        if token ~= "" then headers["Authorization"] = "Bearer " .. token end
        if body ~= "" then
          headers["Content-Type"] = "application/json"
        else
          body = nil
        end
        request = wrk.format(method, path, headers, body)
        formatted[line] = request
      end
      requests[#requests + 1] = request
    end
  end
  local n = #requests
  if n == 0 then error(list .. ": no requests") end
  local index = thread_index or 0
  verifying = index == 0
  position = math.floor(index * n / thread_count) + 1
  if mode == "once" then
    once = true
    last = math.floor((index + 1) * n / thread_count)
    per_thread = math.floor(connections / thread_count)
    local full = wrk.format("GET", "/healthz")
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
        io.write(string.format("gate-bench-thread-done %d\n", thread_index or 0))
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
    'gate-bench {"requests":%d,"duration_us":%d,"elapsed_us":%d,"bytes":%d,' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, elapsed, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
