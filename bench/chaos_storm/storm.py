"""bench/chaos: one batch of real transcode jobs through StreamGate's farm, then through Sidekiq,
each under the same storm (workers SIGKILLed, redis-server restarted, the store's disk full for a
while), and what each lost, ran twice or left half-published. Run by bench/chaos; see bench/README.md.

For each side: a fresh tmpfs is mounted as the store, a fresh redis-server (AOF, appendfsync
everysec, Unix socket) is started, the workers are started and awaited, JOBS jobs are enqueued at
t=0, and the storm's schedule (made once from SEED, the same for both sides) is played until STORM_S
or until the batch is over. Then the side is given DRAIN_TIMEOUT s to finish, and its store, its
queue and its logs are examined. One JSON line per side goes to results.jsonl; the last line printed
is the summary.

The pieces are beside it: sides.py (what both sides share, StreamGate's and Sidekiq's), store.py (the
tmpfs store, the disk-full window, what was published) and processes.py (redis-server on its AOF,
/proc look-ups)."""

import json
import os
import random
import signal
import sys

from sides import Sidekiq, StreamGate


def env(name, default, kind=float):
    return kind(os.environ.get(name, default))


class Settings:
    def __init__(self, work, binary, clips):
        self.work, self.binary, self.clips = work, binary, clips
        self.jobs = env("JOBS", 60, int)
        self.workers = env("WORKERS", 2, int)
        self.lease = env("LEASE", 10)
        self.storm_s = env("STORM_S", 60)
        self.kill_every = (env("KILL_MIN_S", 2), env("KILL_MAX_S", 4))
        self.redis_restarts = env("REDIS_RESTARTS", 2, int)
        self.redis_down_s = env("REDIS_DOWN_S", 2)
        self.full_at, self.full_s = env("FULL_AT_S", 27), env("FULL_S", 10)
        self.store_mib = env("STORE_MIB", 256, int)
        self.drain_timeout = env("DRAIN_TIMEOUT", 300)
        self.seed = env("SEED", 7, int)

    def schedule(self):
        """(t, kind, arg) events: kills every KILL_MIN_S–KILL_MAX_S s (arg picks the victim), redis
        restarts spread over the storm, the disk-full window from FULL_AT_S for FULL_S s."""
        rng = random.Random(self.seed)
        events, t = [], 0.0
        while True:
            t += rng.uniform(*self.kill_every)
            if t >= self.storm_s:
                break
            events.append((t, "kill", rng.random()))
        for i in range(self.redis_restarts):
            events.append((self.storm_s * (i + 1) / (self.redis_restarts + 1) + 1.5, "redis", None))
        events += [(self.full_at, "fill", None), (self.full_at + self.full_s, "unfill", None)]
        return sorted(events, key=lambda e: e[0])


def run_side(cls, settings, events):
    side = cls(settings)
    try:
        return side.run(events)
    finally:
        side.close()


def main():
    work, binary, clips = sys.argv[1:4]
    settings = Settings(work, binary, clips)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    events = settings.schedule()
    print(f"bench/chaos: {settings.jobs} jobs, {settings.workers} workers a side, storm {settings.storm_s:.0f} s: "
          f"{sum(1 for e in events if e[1] == 'kill')} SIGKILLs (every {settings.kill_every[0]:g}–{settings.kill_every[1]:g} s), "
          f"{settings.redis_restarts} redis restarts ({settings.redis_down_s:g} s down), store full from "
          f"{settings.full_at:g} s for {settings.full_s:g} s (tmpfs of {settings.store_mib} MiB); lease {settings.lease:g} s, "
          f"drain timeout {settings.drain_timeout:g} s", flush=True)
    results = []
    sides = os.environ.get("SIDES", "streamgate,sidekiq").split(",")
    for cls in (c for c in (StreamGate, Sidekiq) if c.name in sides):
        result = run_side(cls, settings, events)
        results.append(result)
        with open(os.path.join(work, "results.jsonl"), "a") as out:
            out.write(json.dumps(result, sort_keys=True) + "\n")
        print(f"{result['side']}: " + json.dumps({k: v for k, v in result.items() if k not in ("timeline", "side")}, sort_keys=True), flush=True)
    if len(results) == 2:
        report(results)


def report(results):
    sg, sk = results
    lost = {r["side"]: r["not_ended"] + len(r.get("succeeded_unpublished", [])) for r in results}
    print()
    print("| | StreamGate | Sidekiq |")
    print("|---|---:|---:|")
    rows = [("jobs", "jobs"), ("lost (never ended / nothing published)", None), ("ended failed or dead", "ended_unsucceeded"),
            ("run twice (versions > 1)", "twice"),
            ("half-published", "half"), ("staging left behind", "staging_left"), ("assets published", "published"),
            ("attempts started", "attempts"), ("SIGKILLs", "kills"), ("redis restarts", "redis_restarts"),
            ("time to drain, s", "drain_s")]
    for label, key in rows:
        if key is None:
            values = [lost[r["side"]] for r in results]
        else:
            values = [len(r[key]) if isinstance(r[key], list) else r[key] for r in results]
        print(f"| {label} | " + " | ".join("timeout" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v)) for v in values) + " |")
    def drain(r):
        return r["drain_s"] if r["drain_s"] is not None else float("nan")
    print(f"ratio drain_s={drain(sg) / drain(sk):.2f} (streamgate ÷ sidekiq)  lost: {lost['streamgate']} vs {lost['sidekiq']}  "
          f"twice: {len(sg['twice'])} vs {len(sk['twice'])}")
    print("summary sg_lost=%d sg_twice=%d sg_half=%d sg_drain_s=%.1f sidekiq_lost=%d sidekiq_twice=%d sidekiq_drain_s=%.1f "
          "sg_failed=%d sidekiq_half=%d drain_ratio=%.2f" % (
        lost["streamgate"], len(sg["twice"]), len(sg["half"]), drain(sg), lost["sidekiq"], len(sk["twice"]), drain(sk),
        sg["ended_unsucceeded"], len(sk["half"]), drain(sg) / drain(sk)))


if __name__ == "__main__":
    main()
