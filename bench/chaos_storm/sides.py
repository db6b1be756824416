"""bench/chaos_storm/sides.py: the two sides under the storm.

Side holds what both share: a fresh store (tmpfs) and redis-server, the storm played from the
schedule, the drain, and the store examined afterwards. StreamGate runs `streamgate farm` and
enqueues with plain XADDs; Sidekiq runs WORKERS `sidekiq` processes restarted by a supervisor thread
and enqueues with one push_bulk (jobs.rb, beside this file).
"""

import json
import os
import signal
import subprocess
import threading
import time

import redis

from processes import RedisServer, alive, children
from store import Store, versions_and_checks

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
TERMINAL = {"succeeded", "failed", "dead", "cancelled"}


class Side:
    """What both sides share: the store, redis, the storm loop, the drain loop."""

    name = "?"

    def __init__(self, settings):
        self.s = settings
        self.dir = os.path.join(settings.work, self.name)
        subprocess.run(["rm", "-rf", os.path.join(self.dir, "redis"), os.path.join(self.dir, "logs")], check=True)
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        self.store = Store(os.path.join(self.dir, "store"), settings.store_mib)
        self.redis = RedisServer(os.path.join(self.dir, "redis"))
        self.log = []
        self.stopped = threading.Event()

    def note(self, what):
        self.log.append((round(time.monotonic() - self.t0, 2), what))

    def storm(self, events):
        unfill_at = 0.0
        for at, kind, arg in events:
            if kind == "unfill":
                at = max(at, unfill_at)  # FULL_S from the moment writes started failing
            while time.monotonic() - self.t0 < at:
                if self.stopped.wait(0.05):
                    return
            if kind == "kill":
                victim = self.kill(arg)
                self.note(f"SIGKILL worker {victim}" if victim else "no live worker to kill")
            elif kind == "redis":
                self.redis.stop()
                self.note("redis-server stopped (SIGTERM)")
                time.sleep(self.s.redis_down_s)
                self.redis.start()
                self.note("redis-server started on the same AOF")
            elif kind == "fill":
                self.store.fill()
                unfill_at = time.monotonic() - self.t0 + self.s.full_s
                self.note(f"store full ({self.store.filled_bytes >> 20} MiB of filler, then ENOSPC)")
            elif kind == "unfill":
                self.store.unfill()
                self.note("filler removed")
        self.store.unfill()

    def run(self, events):
        self.redis.start()
        self.start_workers()
        # The storm's clock starts once the batch is in the queue; the drain's at the first enqueue.
        self.t0 = started = time.monotonic()
        ids = self.enqueue()
        self.t0 = time.monotonic()
        self.note(f"{len(ids)} jobs enqueued in {self.t0 - started:.1f} s")
        storm = threading.Thread(target=self.storm, args=(events,), daemon=True)
        storm.start()
        deadline = self.s.storm_s + self.s.drain_timeout
        drained = None
        while time.monotonic() - self.t0 < deadline:
            if self.drained(ids):
                drained = time.monotonic() - started
                break
            time.sleep(0.5)
        self.stopped.set()
        storm.join()
        self.note("drained" if drained is not None else "drain timeout")
        result = self.measure(ids)
        result.update(side=self.name, drain_s=drained, timeline=self.log,
                      kills=sum(1 for _, w in self.log if w.startswith("SIGKILL")),
                      redis_restarts=sum(1 for _, w in self.log if w.startswith("redis-server started")),
                      disk_full_s=self.s.full_s if any(w.startswith("store full") for _, w in self.log) else 0)
        store = os.path.join(self.store.folder, self.store_subfolder)
        assets = versions_and_checks(store)
        result["twice"] = sorted(a for a, e in assets.items() if e["versions"] > 1)
        result["half"] = sorted(a for a, e in assets.items() if e["linked"] and e["missing"])
        result["half_detail"] = {a: assets[a]["missing"][:5] for a in result["half"]}
        staging = os.path.join(store, "staging")
        result["staging_left"] = len(os.listdir(staging)) if os.path.isdir(staging) else 0
        result["published"] = sum(1 for e in assets.values() if e["linked"])
        return result

    def close(self):
        self.stopped.set()
        self.stop_workers()
        self.redis.stop()
        self.store.unmount()


class StreamGate(Side):
    name = "streamgate"
    store_subfolder = "sg"

    def start_workers(self):
        environment = dict(os.environ, STREAMGATE_REDIS_URL=f"unix://{self.redis.socket}")
        self.env = environment
        self.farm = subprocess.Popen(
            [self.s.binary, "farm", "--workers", str(self.s.workers), "--store", os.path.join(self.store.folder, "sg"),
             "--profiles", os.path.join(ROOT, "profiles"), "--logs", os.path.join(self.dir, "logs"), "--lease", str(self.s.lease)],
            env=environment, stdout=open(os.path.join(self.dir, "logs", "farm.log"), "w"), stderr=subprocess.STDOUT)
        client = self.redis.client()
        for _ in range(600):
            now = int(time.time() * 1000)
            if client.zcount("{sg}:workers", now - 5000, "+inf") >= self.s.workers:
                return
            time.sleep(0.1)
        raise SystemExit("bench/chaos: the farm's workers did not start (see logs)")

    def enqueue(self):
        """One pipeline of plain XADDs (docs/jobs.md), as Sidekiq's side uses one push_bulk: the job's
        id is its asset's, and its record is written when a worker takes it."""
        ids, pipe = [], self.redis.client().pipeline(transaction=False)
        for i, clip in enumerate(self.clip_list()):
            job = f"chaos-{i + 1:03d}"
            ids.append(job)
            pipe.xadd("{sg}:jobs:normal", {"job": json.dumps({"id": job, "asset_id": job, "profile": "fast", "source": clip})})
        pipe.execute()
        return ids

    def clip_list(self):
        names = sorted(n for n in os.listdir(self.s.clips) if n.endswith(".mp4"))
        return [os.path.join(self.s.clips, names[i % len(names)]) for i in range(self.s.jobs)]

    def kill(self, pick):
        workers = children(self.farm.pid, "worker")
        if not workers:
            return None
        victim = workers[int(pick * len(workers))]
        os.kill(victim, signal.SIGKILL)
        for _ in range(100):  # until the farm has seen it die, so the next pick is a live one
            if not alive(victim):
                break
            time.sleep(0.01)
        return victim

    def states(self, ids):
        client = self.redis.client()
        pipe = client.pipeline()
        for job in ids:
            pipe.hmget(f"{{sg}}:job:{job}", "state", "attempts", "error", "version", "asset_id", "starts", "orphaned")
        return pipe.execute()

    def drained(self, ids):
        try:
            return all(row[0] in TERMINAL for row in self.states(ids))
        except redis.RedisError:
            return False

    def measure(self, ids):
        rows = self.states(ids)
        by_state = {}
        for row in rows:
            by_state[row[0] or "queued"] = by_state.get(row[0] or "queued", 0) + 1
        published = set(os.listdir(os.path.join(self.store.folder, "sg", "assets")))
        success_unpublished = [r[4] for r in rows if r[0] == "succeeded" and r[4] not in published]
        errors = sorted({(r[2] or "")[:160] for r in rows if r[0] != "succeeded"})
        logs = os.path.join(self.dir, "logs")
        republished = sum(open(os.path.join(logs, name), errors="replace").read().count("already published by an earlier attempt")
                          for name in os.listdir(logs) if name.startswith("default-"))
        return {"jobs": len(ids), "states": by_state, "attempts": sum(int(r[5] or r[1] or 0) for r in rows),
                "attempts_counted": sum(int(r[1] or 0) for r in rows), "orphaned": sum(int(r[6] or 0) for r in rows),
                "already_published": republished,
                "not_ended": sum(1 for r in rows if r[0] not in TERMINAL),
                "ended_unsucceeded": sum(1 for r in rows if r[0] in TERMINAL - {"succeeded"}),
                "succeeded_unpublished": success_unpublished, "errors": errors[:10],
                "outcomes": self.redis.client().hgetall("{sg}:stats")}

    def stop_workers(self):
        if getattr(self, "farm", None) and self.farm.poll() is None:
            self.farm.send_signal(signal.SIGTERM)
            try:
                self.farm.wait(20)
            except subprocess.TimeoutExpired:
                self.farm.send_signal(signal.SIGTERM)  # the second stop hands jobs back at once
                try:
                    self.farm.wait(10)
                except subprocess.TimeoutExpired:
                    self.farm.kill()
                    self.farm.wait()


class Sidekiq(Side):
    name = "sidekiq"
    store_subfolder = "sk"

    def start_workers(self):
        self.runs = os.path.join(self.dir, "logs", "runs.log")
        open(self.runs, "w").close()
        self.env = dict(os.environ, REDIS_URL=f"unix://{self.redis.socket}", CHAOS_STORE=os.path.join(self.store.folder, "sk"),
                        CHAOS_RUNS=self.runs)
        for folder in ("staging", "objects", "assets"):
            os.makedirs(os.path.join(self.store.folder, "sk", folder), exist_ok=True)
        self.slots = [self.spawn(i) for i in range(self.s.workers)]
        self.restarts = 0
        self.supervising = threading.Thread(target=self.supervise, daemon=True)
        self.supervising.start()
        client = self.redis.client()
        for _ in range(600):
            if client.scard("processes") >= self.s.workers:
                return
            time.sleep(0.1)
        raise SystemExit("bench/chaos: the sidekiq processes did not start (see logs)")

    def spawn(self, slot):
        log = open(os.path.join(self.dir, "logs", f"sidekiq-{slot}.log"), "a")
        return subprocess.Popen(["sidekiq", "-r", "./jobs.rb", "-c", "1", "-q", "chaos"], cwd=HERE, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT)

    def supervise(self):
        """Restarts a killed process at once (what the farm does for StreamGate's workers)."""
        while not self.stopped.is_set():
            for slot, process in enumerate(self.slots):
                if process.poll() is not None:
                    self.slots[slot] = self.spawn(slot)
                    self.restarts += 1
            time.sleep(0.2)

    def enqueue(self):
        subprocess.run(["ruby", "jobs.rb", "enqueue", self.redis.socket, self.s.clips, str(self.s.jobs)],
                       cwd=HERE, env=self.env, check=True)
        return [f"chaos-{i + 1:03d}" for i in range(self.s.jobs)]

    def kill(self, pick):
        live = [p for p in self.slots if p.poll() is None]
        if not live:
            return None
        victim = live[int(pick * len(live))]
        victim.kill()
        victim.wait()
        return victim.pid

    def attempts(self):
        """jid → (asset, pid, last word) from the runs log."""
        runs = {}
        with open(self.runs) as text:
            for line in text:
                parts = line.split(" ", 5)
                if len(parts) >= 5:
                    _, word, asset, jid, pid = parts[:5]
                    runs[(jid, pid)] = (asset, int(pid), word)
        return runs

    def drained(self, ids):
        """Every job done; or nothing left anywhere: no queue, no retry or scheduled job, no attempt
        running in a live process (a killed process's jobs are gone with it)."""
        done = {a for a, _, w in self.attempts().values() if w == "done"}
        if done >= set(ids):
            return True
        try:
            client = self.redis.client()
            waiting = client.llen("queue:chaos") + client.zcard("retry") + client.zcard("schedule")
        except redis.RedisError:
            return False
        running = [1 for _, pid, w in self.attempts().values() if w == "start" and alive(pid)]
        return time.monotonic() - self.t0 > 5 and waiting == 0 and not running

    def measure(self, ids):
        runs = self.attempts()
        done = {}
        for asset, _, word in runs.values():
            if word == "done":
                done[asset] = done.get(asset, 0) + 1
        client = self.redis.client()
        return {"jobs": len(ids), "attempts": len(runs),
                "done_runs": sum(done.values()), "not_ended": sum(1 for a in ids if a not in done) - client.zcard("dead"),
                "retry_set": client.zcard("retry"), "ended_unsucceeded": client.zcard("dead"),
                "fails": sum(1 for _, _, w in runs.values() if w == "fail"),
                "killed_in_flight": sum(1 for _, pid, w in runs.values() if w == "start"),
                "process_restarts": self.restarts}

    def stop_workers(self):
        for process in getattr(self, "slots", []):
            if process.poll() is None:
                process.terminate()
        for process in getattr(self, "slots", []):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        # ffmpeg children end with their process (pdeathsig); nothing else was started.

