# bench/queue's Sidekiq side: the job the worker runs. It does nothing, like StreamGate's `noop`
# kind and rq's `tasks.noop`. Each job carries its batch's name and size; the worker counts them
# in memory, and the one that completes a batch pushes the time to `bench:done:<batch>` — one
# Redis call per batch, so finding out when a batch is done costs the jobs nothing. (Sidekiq 6's
# own `processed` counter is flushed only with its heartbeat, every 5 s: too coarse to time by.)
require "sidekiq"

# Debian's redis gem (4.8) warns on every call Sidekiq 6.4 makes the old way (`sadd`, `brpop`
# with a positional timeout): on standard error, per job. Silenced, as they say nothing here.
Redis.silence_deprecations = true
# One log line per job start and end would be most of a no-op job's cost; rq runs at WARNING too.
Sidekiq.configure_server { |config| config.logger.level = Logger::WARN }

class NoopJob
  include Sidekiq::Worker
  sidekiq_options queue: "bench", retry: false

  @lock = Mutex.new
  @counts = Hash.new(0)

  class << self
    # Returns true for the call that brings `batch` to `size`.
    def count(batch, size)
      @lock.synchronize { (@counts[batch] += 1) == size }
    end
  end

  def perform(batch, size)
    return unless self.class.count(batch, size)
    Sidekiq.redis { |redis| redis.rpush("bench:done:#{batch}", Process.clock_gettime(Process::CLOCK_REALTIME).to_s) }
  end
end
