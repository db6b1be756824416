import Redis

/// The scripts of a rollout (docs/jobs.md, "Tracks and rollouts"). The window's counters live in
/// one hash, `{sg}:rollout`: `start_job` and `finish_job` (``Scripts/library``) count each attempt
/// of either track there, in the same step that starts or ends it; these scripts start, change and
/// end the window, and let a canary reserve its share before it reads the streams.
extension Scripts {
    /// A canary worker asks to take up to `wanted` jobs.
    ///
    /// The share is enforced before XREADGROUP: an entry a canary has read cannot be handed to
    /// another worker without sending it to the back of its stream. So the canary reserves its
    /// slots here, counting them as started at once (given back if it reads nothing), and gets as
    /// many as keep `canary ≤ share × total` over the starts since the share was set: several
    /// canaries can never take more than the share between them, and stable workers, which never
    /// ask, take every job a canary leaves, so no job waits for a canary.
    ///
    /// KEYS: rollout, last rollout. ARGV: wanted.
    /// Returns {state, window, granted}: `none` (no rollout: take freely, nothing reserved),
    /// `held` (the last rollout was aborted: take nothing until the next one starts) or `active`.
    static let rolloutTake = RedisScript("""
    local wanted = tonumber(ARGV[1])
    local f = redis.call('HMGET', KEYS[1], 'id', 'share', 'canary:started', 'stable:started', 'share_canary', 'share_total')
    if not f[1] then
      if redis.call('HGET', KEYS[2], 'ended') == 'aborted' then return {'held', '', 0} end
      return {'none', '', wanted}
    end
    local share = tonumber(f[2]) or 0
    local canary = (tonumber(f[3]) or 0)
    local total = canary + (tonumber(f[4]) or 0)
    canary = canary - (tonumber(f[5]) or 0)
    total = total - (tonumber(f[6]) or 0)
    local granted = wanted
    if share < 1 then
      -- The largest g with canary + g <= share * (total + g).
      granted = math.floor((share * total - canary) / (1 - share) + 1e-9)
      granted = math.max(0, math.min(wanted, granted))
    end
    if granted > 0 then redis.call('HINCRBY', KEYS[1], 'canary:started', granted) end
    return {'active', f[1], granted}
    """)

    /// Gives back slots a canary reserved and did not start (it read fewer jobs, or some were
    /// skipped), if the window it reserved them in is still the current one.
    /// KEYS: rollout. ARGV: window, count. Returns 1 when given back.
    static let rolloutGiveBack = RedisScript("""
    if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 0 end
    redis.call('HINCRBY', KEYS[1], 'canary:started', -tonumber(ARGV[2]))
    return 1
    """)

    /// Starts a rollout window unless one is running.
    /// KEYS: rollout. ARGV: id, share, now, canary version, stable version.
    /// Returns {1, id} when started, {0, the running window's id} otherwise.
    static let rolloutStart = RedisScript("""
    if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('HGET', KEYS[1], 'id')} end
    redis.call('HSET', KEYS[1], 'id', ARGV[1], 'share', ARGV[2], 'started_at', ARGV[3], 'updated_at', ARGV[3],
      'canary_version', ARGV[4], 'stable_version', ARGV[5], 'canary:started', 0, 'stable:started', 0,
      'share_canary', 0, 'share_total', 0)
    return {1, ARGV[1]}
    """)

    /// Changes the share of the running window. The share counts from now on (the starts so far
    /// are its new base), so raising it does not hand the canary a burst to catch up, nor does
    /// lowering it stop the canary until the old starts are diluted.
    /// KEYS: rollout. ARGV: share, now. Returns the previous share, or nil with no rollout.
    static let rolloutSetShare = RedisScript("""
    local f = redis.call('HMGET', KEYS[1], 'id', 'share', 'canary:started', 'stable:started')
    if not f[1] then return nil end
    local canary = tonumber(f[3]) or 0
    redis.call('HSET', KEYS[1], 'share', ARGV[1], 'updated_at', ARGV[2], 'share_canary', canary,
      'share_total', canary + (tonumber(f[4]) or 0))
    return f[2]
    """)

    /// Ends the running window: it becomes the last rollout, marked `promoted` or `aborted`.
    /// KEYS: rollout, last rollout. ARGV: how, now. Returns 1, or 0 with no rollout.
    static let rolloutEnd = RedisScript("""
    if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
    redis.call('RENAME', KEYS[1], KEYS[2])
    redis.call('HSET', KEYS[2], 'ended', ARGV[1], 'ended_at', ARGV[2])
    return 1
    """)
}
