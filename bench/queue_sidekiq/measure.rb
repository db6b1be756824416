# bench/queue's Sidekiq side: enqueue latency, then end-to-end throughput of no-op jobs through the
# `sidekiq` process that is running, on the same redis-server StreamGate and rq used. Prints one
# JSON line with the same fields as `streamgate bench-queue` and bench/queue_rq/measure.py.
#
# Usage: ruby measure.rb SOCKET JOBS SAMPLES [TIMEOUT_S]
require "json"
require "sidekiq"
require_relative "jobs"

socket, jobs, samples = ARGV[0], Integer(ARGV[1]), Integer(ARGV[2])
timeout = ARGV[3] ? Float(ARGV[3]) : 600.0
Sidekiq.configure_client { |config| config.redis = { url: "unix://#{socket}" } }

def wait_for(batch, timeout)
  reply = Sidekiq.redis { |redis| redis.blpop("bench:done:#{batch}", timeout: timeout.ceil) }
  abort "sidekiq: the worker did not finish batch #{batch} within #{timeout} s" unless reply
end

def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

# Single enqueues, one Sidekiq::Client.push each (what an application does per job).
latencies = []
samples.times do
  started = now
  Sidekiq::Client.push("class" => NoopJob, "args" => ["latency", samples])
  latencies << (now - started) * 1000
end
wait_for("latency", timeout)

# Batches of 500 with Sidekiq::Client.push_bulk (one LPUSH each), as the other sides pipeline theirs.
started = now
offset = 0
while offset < jobs
  size = [500, jobs - offset].min
  Sidekiq::Client.push_bulk("class" => NoopJob, "args" => Array.new(size) { ["throughput", jobs] })
  offset += size
end
enqueued = now - started
wait_for("throughput", timeout)
elapsed = now - started

latencies.sort!
percentile = ->(p) { latencies.empty? ? 0 : latencies[[latencies.size - 1, (latencies.size * p).to_i].min] }
puts JSON.generate({
  "enqueue_only_jobs_per_s" => jobs / enqueued, "enqueue_p50_ms" => percentile.(0.5), "enqueue_p99_ms" => percentile.(0.99),
  "jobs" => jobs, "jobs_per_s" => jobs / elapsed, "seconds" => elapsed,
})
