import Vault
import Redis

/// The Lua scripts that move a job from one state to the next. Each runs atomically in Redis, so a
/// job is never in two states, never acknowledged without its record saying why, and never
/// finished by a worker that no longer holds its lease.
///
/// Every key a script touches is passed in KEYS (all share one hash tag), as Redis Cluster wants.
enum Scripts {
    /// Attempts a job may lose to its worker dying under it before it is dead-lettered (those
    /// attempts do not count toward `max_attempts`).
    static let orphanLimit = 10

    /// Lua helpers shared by the scripts below.
    static let prelude = """
    local ORPHAN_LIMIT = \(orphanLimit)
    -- Every stream a script appends to (events, dead letters) is capped: none grows without bound.
    local function capped_xadd(key, maxlen, ...)
      redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', ...)
    end
    -- The index of job ids keeps the newest `maxlen` (records expire on their own after retention).
    local function index_job(index, maxlen, created, id)
      redis.call('ZADD', index, created, id)
      redis.call('ZREMRANGEBYRANK', index, 0, -(tonumber(maxlen) + 1))
    end
    local function terminal(state)
      return state == 'succeeded' or state == 'failed' or state == 'dead' or state == 'cancelled'
    end
    -- Renews a lease (resets the entry's idle time) only while the record's lease token and the
    -- entry's owner in the pending list are both still this worker's.
    local function hold_lease(job, stream, lease, group, consumer, entry)
      if redis.call('HGET', job, 'lease') ~= lease then return false end
      local pending = redis.call('XPENDING', stream, group, entry, entry, 1)
      if #pending == 0 or pending[1][2] ~= consumer then return false end
      redis.call('XCLAIM', stream, group, consumer, 0, entry, 'JUSTID')
      return true
    end
    -- 2 when cancellation was asked, else 1: the answer of a write under a held lease.
    local function held(job)
      if redis.call('HGET', job, 'cancel') == '1' then return 2 end
      return 1
    end
    -- The record of a job just queued as `entry` of `stream`.
    local function create_record(job, stream, entry, id, spec, priority, max_attempts, asset, now)
      redis.call('HSET', job, 'id', id, 'spec', spec, 'state', 'queued', 'attempts', 0,
        'max_attempts', max_attempts, 'priority', priority, 'asset_id', asset, 'created_at', now,
        'updated_at', now, 'entry', entry, 'stream', stream)
    end

    """

    /// KEYS: job, stream, index, idempotency, events.
    /// ARGV: id, spec, priority, now, max_attempts, asset_id, use_idempotency, idempotency_ttl, events_maxlen,
    /// index_maxlen.
    /// Returns {1, id} when created, {0, existing id} for a known idempotency key.
    static let enqueue = RedisScript(prelude + """
    if ARGV[7] == '1' then
      local existing = redis.call('GET', KEYS[4])
      if existing then
        -- A retry, maybe after a failed WAIT: renewing the key is a write, so a WAIT after this
        -- call covers the first enqueue too.
        redis.call('EXPIRE', KEYS[4], ARGV[8])
        return {0, existing}
      end
    end
    if redis.call('EXISTS', KEYS[1]) == 1 then
      return redis.error_reply('EXISTS job ' .. ARGV[1] .. ' already exists')
    end
    if ARGV[7] == '1' then redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[8]) end
    local entry = redis.call('XADD', KEYS[2], '*', 'job', ARGV[2])
    create_record(KEYS[1], KEYS[2], entry, ARGV[1], ARGV[2], ARGV[3], ARGV[5], ARGV[6], ARGV[4])
    index_job(KEYS[3], ARGV[10], ARGV[4], ARGV[1])
    capped_xadd(KEYS[5], ARGV[9], 'job', ARGV[1], 'state', 'queued', 'at', ARGV[4])
    return {1, ARGV[1]}
    """)

    /// `start_job` and `finish_job`: the bodies of ``start`` and ``finish`` as Lua functions of
    /// (keys, arguments), so ``runInlineBatch`` can do both in one step.
    static let library = prelude + """
    -- A rollout's counters (RolloutScripts.swift): an attempt is tagged with its worker's track
    -- and the window it started in, so its end counts only in that window. A canary's start was
    -- counted when it reserved the slot (`reserved` names that window).
    local function track_start(rollout, job, track, reserved)
      if not rollout or not track or track == '' then return end
      local window = redis.call('HGET', rollout, 'id')
      if not window then
        redis.call('HSET', job, 'track', track)
        redis.call('HDEL', job, 'rollout')
        return
      end
      redis.call('HSET', job, 'track', track, 'rollout', window)
      if reserved ~= window then redis.call('HINCRBY', rollout, track .. ':started', 1) end
    end
    local function track_end(rollout, job, outcome, media, wall)
      if not rollout then return end
      local window = redis.call('HGET', job, 'rollout')
      if not window or redis.call('HGET', rollout, 'id') ~= window then return end
      local track = redis.call('HGET', job, 'track') or 'stable'
      redis.call('HINCRBY', rollout, track .. ':' .. outcome, 1)
      if media and media ~= '' and wall and wall ~= '' then
        redis.call('HINCRBYFLOAT', rollout, track .. ':media_s', media)
        redis.call('HINCRBYFLOAT', rollout, track .. ':wall_s', wall)
        redis.call('HINCRBY', rollout, track .. ':timed', 1)
      end
    end
    local function start_job(K, A)
      local function close(result)
        redis.call('XACK', K[2], A[3], A[2])
        redis.call('XDEL', K[2], A[2])
        return result
      end
      if redis.call('EXISTS', K[1]) == 0 then
        create_record(K[1], K[2], A[2], A[1], A[6], A[7], A[8], A[10], A[5])
        index_job(K[5], A[12], A[5], A[1])
      end
      local state = redis.call('HGET', K[1], 'state')
      if terminal(state) then return close({'skip', state}) end
      local current = redis.call('HGET', K[1], 'entry')
      if current ~= A[2] then return close({'skip', 'superseded entry'}) end
      local now = A[5]
      if redis.call('HGET', K[1], 'cancel') == '1' then
        redis.call('HSET', K[1], 'state', 'cancelled', 'finished_at', now, 'updated_at', now)
        redis.call('HDEL', K[1], 'lease')
        redis.call('EXPIRE', K[1], A[11])
        redis.call('HINCRBY', K[6], 'cancelled', 1)
        capped_xadd(K[3], A[9], 'job', A[1], 'state', 'cancelled', 'at', now)
        return close({'skip', 'cancelled'})
      end
      -- Still 'running': the last attempt never ended, because its worker died (or stalled past
      -- its lease) under it. That is the farm's failure, not the job's, so the attempt is given
      -- back; but a job whose attempts keep losing their worker (one that kills whatever runs it)
      -- is dead-lettered after ORPHAN_LIMIT of them.
      local reason = nil
      if state == 'running' then
        redis.call('HINCRBY', K[1], 'attempts', -1)
        local orphaned = redis.call('HINCRBY', K[1], 'orphaned', 1)
        if orphaned >= ORPHAN_LIMIT then
          reason = 'its worker died ' .. orphaned .. ' times while running it'
        end
      end
      local attempts = redis.call('HINCRBY', K[1], 'attempts', 1)
      local max = tonumber(redis.call('HGET', K[1], 'max_attempts')) or 3
      if reason == nil and attempts > max then
        local last = redis.call('HGET', K[1], 'error') or ''
        reason = 'gave up after ' .. (attempts - 1) .. ' attempts'
        if last ~= '' then reason = reason .. ': ' .. last end
      end
      if reason ~= nil then
        attempts = attempts - 1
        redis.call('HSET', K[1], 'state', 'dead', 'attempts', attempts, 'error', reason,
          'finished_at', now, 'updated_at', now)
        redis.call('HDEL', K[1], 'lease')
        redis.call('EXPIRE', K[1], A[11])
        capped_xadd(K[4], A[9], 'job', A[1], 'reason', reason, 'attempts', attempts, 'at', now,
          'spec', redis.call('HGET', K[1], 'spec'))
        redis.call('HINCRBY', K[6], 'dead', 1)
        capped_xadd(K[3], A[9], 'job', A[1], 'state', 'dead', 'error', reason, 'at', now)
        return close({'dead', reason})
      end
      -- Unique per start: attempt numbers repeat once an attempt is given back, and a worker that
      -- stalled may take its own job over; its stale attempt must not share the new lease.
      local lease = A[4] .. ':' .. attempts .. ':' .. redis.call('HINCRBY', K[1], 'starts', 1)
      redis.call('HSET', K[1], 'state', 'running', 'worker', A[4], 'lease', lease, 'started_at', now,
        'updated_at', now, 'progress', '0', 'stage', 'starting')
      capped_xadd(K[3], A[9], 'job', A[1], 'state', 'running', 'attempt', attempts, 'worker', A[4], 'at', now)
      track_start(K[7], K[1], A[13], A[14])
      return {'run', lease, attempts, redis.call('HGET', K[1], 'spec'), redis.call('HGET', K[1], 'asset_id') or ''}
    end
    local function finish_job(K, A)
      if redis.call('HGET', K[1], 'lease') ~= A[1] then
        -- The same attempt's end sent again (its answer was lost, or WAIT found it not yet on a
        -- replica): recorded already. Written once more so that a WAIT after it covers the first.
        if redis.call('HGET', K[1], 'finished_lease') == A[1] then
          redis.call('HSET', K[1], 'finished_lease', A[1])
          return 1
        end
        return 0
      end
      local now, outcome, id = A[4], A[5], A[11]
      redis.call('XACK', K[2], A[2], A[3])
      redis.call('XDEL', K[2], A[3])
      redis.call('HDEL', K[1], 'lease')
      redis.call('HSET', K[1], 'finished_lease', A[1])
      if outcome == 'retry' or outcome == 'postpone' then
        -- A postponed attempt failed through no fault of the job's: it does not count.
        if outcome == 'postpone' then redis.call('HINCRBY', K[1], 'attempts', -1) end
        redis.call('HSET', K[1], 'state', 'retrying', 'error', A[6], 'next_attempt_at', A[8],
          'updated_at', now, 'entry', '', 'stage', 'waiting to retry')
        redis.call('ZADD', K[5], A[8], id)
        capped_xadd(K[3], A[9], 'job', id, 'state', 'retrying', 'error', A[6], 'at', now)
      elseif outcome == 'release' then
        redis.call('HINCRBY', K[1], 'attempts', -1)
        local entry = redis.call('XADD', K[2], '*', 'job', redis.call('HGET', K[1], 'spec'))
        redis.call('HSET', K[1], 'state', 'queued', 'entry', entry, 'updated_at', now, 'stage', 'released')
        capped_xadd(K[3], A[9], 'job', id, 'state', 'queued', 'at', now)
      else
        redis.call('HSET', K[1], 'state', outcome, 'error', A[6], 'version', A[7],
          'finished_at', now, 'updated_at', now, 'stage', outcome)
        if outcome == 'succeeded' then redis.call('HSET', K[1], 'progress', '100') end
        -- A new version is live: tell every origin, in the same step that records it.
        local asset = redis.call('HGET', K[1], 'asset_id')
        if outcome == 'succeeded' and A[7] ~= '' and A[12] and asset and asset ~= '' then
          redis.call('PUBLISH', A[12], asset)
        end
        if outcome == 'dead' then
          capped_xadd(K[4], A[9], 'job', id, 'reason', A[6],
            'attempts', redis.call('HGET', K[1], 'attempts'), 'at', now, 'spec', redis.call('HGET', K[1], 'spec'))
        end
        redis.call('EXPIRE', K[1], A[10])
        capped_xadd(K[3], A[9], 'job', id, 'state', outcome, 'error', A[6], 'at', now)
      end
      track_end(K[7], K[1], outcome, A[13], A[14])
      redis.call('HINCRBY', K[6], outcome, 1)
      return 1
    end
    -- start_job then finish_job as succeeded; K as start_job's plus the delayed set.
    local function run_inline(K, A, delayed)
      local started = start_job(K, A)
      if started[1] ~= 'run' then return started end
      finish_job({K[1], K[2], K[3], K[4], delayed, K[6], K[7]},
        {started[2], A[3], A[2], A[5], 'succeeded', '', '', '0', A[9], A[11], A[1]})
      return {'done', started[3]}
    end

    """

    /// A worker took a stream entry. Creates the record of a job enqueued with a plain XADD, drops
    /// entries of finished or cancelled jobs, dead-letters a job out of attempts, else marks it
    /// running under a new lease.
    ///
    /// KEYS: job, stream, events, dead, index, stats, rollout.
    /// ARGV: id, entry, group, consumer, now, spec, priority, max_attempts, events_maxlen, asset_id, retention,
    /// index_maxlen, track, the rollout window the worker reserved this start in ('' for none).
    /// Returns {'run', lease, attempts, spec, asset_id} or {'skip', why} or {'dead', reason}.
    static let start = RedisScript(library + """
    return start_job(KEYS, ARGV)
    """)

    /// Renews a lease: resets the entry's idle time, only while this worker still owns it.
    /// KEYS: job, stream. ARGV: lease, group, consumer, entry, now.
    /// Returns 0 when the lease is lost, 1 when renewed, 2 when renewed and cancellation was asked.
    static let renew = RedisScript(prelude + """
    if not hold_lease(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
    redis.call('HSET', KEYS[1], 'updated_at', ARGV[5])
    return held(KEYS[1])
    """)

    /// Records progress under a lease, and renews the lease (as ``renew`` does) in the same step.
    /// KEYS: job, events, stream.
    /// ARGV: lease, now, progress, stage, fps, speed, eta_s, events_maxlen, id, group, consumer, entry.
    /// Returns 0 when the lease is lost, 1, or 2 when cancellation was asked.
    static let progress = RedisScript(prelude + """
    if not hold_lease(KEYS[1], KEYS[3], ARGV[1], ARGV[10], ARGV[11], ARGV[12]) then return 0 end
    redis.call('HSET', KEYS[1], 'progress', ARGV[3], 'stage', ARGV[4], 'fps', ARGV[5], 'speed', ARGV[6],
      'eta_s', ARGV[7], 'updated_at', ARGV[2])
    capped_xadd(KEYS[2], ARGV[8], 'job', ARGV[9], 'state', 'running', 'progress', ARGV[3], 'stage', ARGV[4],
      'fps', ARGV[5], 'speed', ARGV[6], 'eta_s', ARGV[7], 'at', ARGV[2])
    return held(KEYS[1])
    """)

    /// Records fields on a job under its lease (a split transcode's plan, share and manifests),
    /// and renews the lease. KEYS: job, stream. ARGV: lease, group, consumer, entry, now, then
    /// field and value pairs. Returns like `renew`.
    static let record = RedisScript(prelude + """
    if not hold_lease(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
    for i = 6, #ARGV - 1, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
    redis.call('HSET', KEYS[1], 'updated_at', ARGV[5])
    return held(KEYS[1])
    """)

    /// A running job's version is shown while it grows: recorded on the job, told on the events
    /// stream, and announced to every origin on the asset-changes channel, in one step.
    /// KEYS: job, events, stream. ARGV: lease, now, version, events_maxlen, id, group, consumer,
    /// entry, asset-changes channel. Returns like `renew`.
    static let playable = RedisScript(prelude + """
    if not hold_lease(KEYS[1], KEYS[3], ARGV[1], ARGV[6], ARGV[7], ARGV[8]) then return 0 end
    redis.call('HSET', KEYS[1], 'playable_at', ARGV[2], 'playable_version', ARGV[3], 'updated_at', ARGV[2])
    capped_xadd(KEYS[2], ARGV[4], 'job', ARGV[5], 'state', 'playable', 'version', ARGV[3], 'at', ARGV[2])
    local asset = redis.call('HGET', KEYS[1], 'asset_id')
    if asset and asset ~= '' then redis.call('PUBLISH', ARGV[9], asset) end
    return held(KEYS[1])
    """)

    /// Ends an attempt under its lease: succeeded, failed, dead, cancelled, retry (to the delayed set),
    /// postpone (to the delayed set, the attempt not counted) or release (straight back to the
    /// stream, the attempt not counted).
    /// KEYS: job, stream, events, dead, delayed, stats, rollout.
    /// ARGV: lease, group, entry, now, outcome, error, version, retry_at, events_maxlen, retention, id,
    /// asset-changes channel (a succeeded job that published a version announces its asset there),
    /// media seconds and wall seconds the attempt transcoded in (both '' when not measured).
    /// Returns 1, or 0 when the lease was lost (nothing changed). Sent again under the same lease
    /// (a retry), returns 1 and changes nothing but `finished_lease`.
    static let finish = RedisScript(library + """
    return finish_job(KEYS, ARGV)
    """)

    /// Cancels a job: at once when nobody runs it, else flags it for its worker.
    /// KEYS: job, delayed, events, stream high, stream normal, stats.
    /// ARGV: id, now, events_maxlen, retention.
    /// Returns {1, 'cancelled' | 'cancelling'} or {0, state | 'missing'}.
    static let cancel = RedisScript(prelude + """
    local state = redis.call('HGET', KEYS[1], 'state')
    if not state then return {0, 'missing'} end
    if terminal(state) then return {0, state} end
    local now = ARGV[2]
    redis.call('HSET', KEYS[1], 'cancel', '1', 'updated_at', now)
    if state == 'running' then return {1, 'cancelling'} end
    redis.call('ZREM', KEYS[2], ARGV[1])
    local stream = redis.call('HGET', KEYS[1], 'stream')
    local entry = redis.call('HGET', KEYS[1], 'entry')
    if entry and entry ~= '' then
      if stream == KEYS[4] then redis.call('XDEL', KEYS[4], entry) end
      if stream == KEYS[5] then redis.call('XDEL', KEYS[5], entry) end
    end
    redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', now, 'stage', 'cancelled', 'entry', '')
    redis.call('EXPIRE', KEYS[1], ARGV[4])
    redis.call('HINCRBY', KEYS[6], 'cancelled', 1)
    capped_xadd(KEYS[3], ARGV[3], 'job', ARGV[1], 'state', 'cancelled', 'at', now)
    return {1, 'cancelled'}
    """)

    /// Moves one due retry back to its stream. KEYS: delayed, job, stream, events.
    /// ARGV: id, now, events_maxlen. Returns 1 when moved.
    static let promote = RedisScript(prelude + """
    if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
    if redis.call('HGET', KEYS[2], 'state') ~= 'retrying' then return 0 end
    local entry = redis.call('XADD', KEYS[3], '*', 'job', redis.call('HGET', KEYS[2], 'spec'))
    redis.call('HSET', KEYS[2], 'state', 'queued', 'entry', entry, 'stream', KEYS[3], 'updated_at', ARGV[2], 'stage', 'queued')
    capped_xadd(KEYS[4], ARGV[3], 'job', ARGV[1], 'state', 'queued', 'at', ARGV[2])
    return 1
    """)

    /// Dead-letters a stream entry that is not a job (no `job` field, bad JSON, a bad field).
    /// KEYS: stream, dead, events, stats. ARGV: group, entry, reason, now, fields (JSON), events_maxlen.
    static let rejectEntry = RedisScript(prelude + """
    capped_xadd(KEYS[2], ARGV[6], 'entry', ARGV[2], 'stream', KEYS[1], 'reason', ARGV[3], 'at', ARGV[4], 'fields', ARGV[5])
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
    redis.call('XDEL', KEYS[1], ARGV[2])
    redis.call('HINCRBY', KEYS[4], 'rejected', 1)
    capped_xadd(KEYS[3], ARGV[6], 'entry', ARGV[2], 'state', 'rejected', 'error', ARGV[3], 'at', ARGV[4])
    return 1
    """)
}
