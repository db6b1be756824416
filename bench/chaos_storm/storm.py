"""bench/chaos: one batch of real transcode jobs through StreamGate's farm, then through Sidekiq,
each under the same storm (workers SIGKILLed, redis-server restarted, the store's disk full for a
while), and what each lost, ran twice or left half-published. Run by bench/chaos; see bench/README.md.

For each side: a fresh tmpfs is mounted as the store, a fresh redis-server (AOF, appendfsync
everysec, Unix socket) is started, the workers are started and awaited, JOBS jobs are enqueued at
t=0, and the storm's schedule (made once from SEED, the same for both sides) is played until STORM_S
or until the batch is over. Then the side is given DRAIN_TIMEOUT s to finish, and its store, its
queue and its logs are examined. One JSON line per side goes to results.jsonl; the last line printed
is the summary."""

import errno
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import redis

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
TERMINAL = {"succeeded", "failed", "dead", "cancelled"}


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


class RedisServer:
    """redis-server on a Unix socket with an append-only file; restarted on the same AOF."""

    def __init__(self, folder):
        self.folder, self.socket, self.process = folder, os.path.join(folder, "redis.sock"), None
        os.makedirs(folder, exist_ok=True)

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700", "--dir", self.folder,
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
             "--logfile", os.path.join(self.folder, "redis.log")])
        client = self.client()
        for _ in range(200):
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise SystemExit(f"bench/chaos: redis-server did not start (see {self.folder}/redis.log)")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()

    def client(self, db=0):
        return redis.Redis(unix_socket_path=self.socket, db=db, socket_timeout=5, decode_responses=True)


class Store:
    """A tmpfs of STORE_MIB mounted for one side, and the disk-full window on it."""

    def __init__(self, folder, mib):
        self.folder, self.mib, self.filler = folder, mib, os.path.join(folder, "filler")
        os.makedirs(folder, exist_ok=True)
        if os.path.ismount(folder):
            subprocess.run(["umount", folder], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0755", "tmpfs", folder], check=True)
        self.full_since = None
        self.filled_bytes = 0

    def fill(self):
        """Writes the filler until the filesystem refuses (ENOSPC)."""
        block = b"\0" * (1 << 20)
        with open(self.filler, "wb", buffering=0) as out:
            while True:
                try:
                    self.filled_bytes += out.write(block)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
        self.full_since = time.monotonic()

    def unfill(self):
        if os.path.exists(self.filler):
            os.unlink(self.filler)

    def unmount(self):
        subprocess.run(["umount", self.folder], check=False)


def versions_and_checks(store):
    """Per asset: the versions under objects/, the linked one, and what the linked one lacks."""
    report = {}
    objects, assets = os.path.join(store, "objects"), os.path.join(store, "assets")
    for asset in sorted(os.listdir(objects)) if os.path.isdir(objects) else []:
        versions = sorted(n for n in os.listdir(os.path.join(objects, asset)) if not n.startswith("."))
        report[asset] = {"versions": len(versions), "linked": None, "missing": []}
    for asset in sorted(os.listdir(assets)) if os.path.isdir(assets) else []:
        if asset.startswith("."):
            continue
        entry = report.setdefault(asset, {"versions": 0, "linked": None, "missing": []})
        target = os.readlink(os.path.join(assets, asset))
        entry["linked"] = os.path.basename(target)
        entry["missing"] = missing_files(os.path.join(assets, target))
    return report


def missing_files(version):
    """Files the version's playlists name (media playlists, segments, keys) or the store requires
    (master.m3u8, asset.json) that are absent or empty."""
    missing = [name for name in ("master.m3u8", "asset.json") if not nonempty(os.path.join(version, name))]
    if missing:
        return missing
    for uri in uris(os.path.join(version, "master.m3u8")):
        playlist = os.path.join(version, uri)
        if not nonempty(playlist):
            missing.append(uri)
            continue
        folder = os.path.dirname(playlist)
        for name in uris(playlist):
            if not nonempty(os.path.join(folder, name)):
                missing.append(os.path.relpath(os.path.join(folder, name), version))
        with open(playlist) as text:
            for key in set(re.findall(r'#EXT-X-KEY:[^\n]*URI="([^"]+)"', text.read())):
                path = os.path.normpath(os.path.join(folder, key)) + ".key"
                if not nonempty(path):
                    missing.append(os.path.relpath(path, version))
    return missing


def uris(playlist):
    with open(playlist) as text:
        return [line.strip() for line in text if line.strip() and not line.startswith("#")]


def nonempty(path):
    return os.path.isfile(path) and os.path.getsize(path) > 0


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children(parent, needle):
    """Live processes whose parent is `parent` and whose command line contains `needle`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/cmdline", "rb") as cmd:
                line = cmd.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == parent and needle in line:
            found.append(int(name))
    return sorted(found)


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
