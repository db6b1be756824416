import Redis
/// Scripts that move many jobs in one step. One script call costs Redis more than the handful of
/// writes a job needs, so a batch of jobs is one call; what every job of the batch shares (the
/// index trim, the acknowledgement, the counters) is written once.
extension Scripts {
    /// Enqueues jobs without idempotency keys (the bulk form of ``enqueue``).
    ///
    /// KEYS: index, events, then job, stream for each job.
    /// ARGV: now, events_maxlen, index_maxlen, then id, spec, priority, max_attempts, asset_id for
    /// each job. Returns, per job, 1 when created or 0 when a job with its id already exists.
    static let enqueueBatch = RedisScript(prelude + """
    local now, maxlen = ARGV[1], ARGV[2]
    local created, indexed = {}, {}
    for i = 1, (#KEYS - 2) / 2 do
      local job, stream = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
      local a = 3 + (i - 1) * 5
      local id, spec = ARGV[a + 1], ARGV[a + 2]
      if redis.call('EXISTS', job) == 1 then
        created[i] = 0
      else
        local entry = redis.call('XADD', stream, '*', 'job', spec)
        create_record(job, stream, entry, id, spec, ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], now)
        capped_xadd(KEYS[2], maxlen, 'job', id, 'state', 'queued', 'at', now)
        indexed[#indexed + 1] = now
        indexed[#indexed + 1] = id
        created[i] = 1
      end
    end
    if #indexed > 0 then
      redis.call('ZADD', KEYS[1], unpack(indexed))
      redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
    end
    return created
    """)

    /// Takes inline (no-op) jobs delivered from one stream and finishes them as succeeded, in one
    /// step. A job simply queued, on its current entry, with an attempt left and no cancellation
    /// goes from queued to succeeded directly (it was never observably running, so no `running`
    /// event); every other case (a record to create, a cancelled, finished, orphaned or exhausted
    /// job) takes `start_job` and `finish_job` exactly as a worker's job would.
    ///
    /// KEYS: stream, events, dead, index, stats, delayed, rollout, then the job of each delivery.
    /// ARGV: group, consumer, now, events_maxlen, retention, index_maxlen, track, reserved window
    /// ('' for none), then id, entry, spec, priority, max_attempts, asset_id for each delivery.
    /// Returns, per delivery, {'done', attempt} or ``start``'s {'skip', why} / {'dead', reason}.
    static let runInlineBatch = RedisScript(library + """
    local stream, group, consumer, now, maxlen, retention = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
    local results, acked = {}, {}
    local track, reserved = ARGV[7], ARGV[8]
    for i = 1, #KEYS - 7 do
      local job, a = KEYS[7 + i], 8 + (i - 1) * 6
      local id, entry = ARGV[a + 1], ARGV[a + 2]
      local f = redis.call('HMGET', job, 'state', 'entry', 'cancel', 'attempts', 'max_attempts')
      local attempt = (tonumber(f[4]) or 0) + 1
      if f[1] == 'queued' and f[2] == entry and f[3] ~= '1' and attempt <= (tonumber(f[5]) or 3) then
        redis.call('HSET', job, 'state', 'succeeded', 'attempts', attempt, 'worker', consumer,
          'started_at', now, 'finished_at', now, 'updated_at', now, 'progress', '100',
          'stage', 'succeeded', 'error', '', 'version', '')
        redis.call('EXPIRE', job, retention)
        capped_xadd(KEYS[2], maxlen, 'job', id, 'state', 'succeeded', 'error', '', 'at', now)
        track_start(KEYS[7], job, track, reserved)
        track_end(KEYS[7], job, 'succeeded')
        acked[#acked + 1] = entry
        results[i] = {'done', attempt}
      else
        results[i] = run_inline({job, stream, KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7]},
          {id, entry, group, consumer, now, ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], maxlen, ARGV[a + 6],
           retention, ARGV[6], track, reserved}, KEYS[6])
      end
    end
    if #acked > 0 then
      redis.call('XACK', stream, group, unpack(acked))
      redis.call('XDEL', stream, unpack(acked))
      redis.call('HINCRBY', KEYS[5], 'succeeded', #acked)
    end
    return results
    """)
}
