#!/usr/bin/env python3
"""bench/hostile/drive.py: pushes the hostile files through a real StreamGate farm and reports.

Started by bench/hostile/run.sh (which checks the tools and builds the binary). It

1. opens the canary listener (TCP and UDP on one free loopback port), then runs generate.py with
   that port and the canary folder (outside the store);
2. starts a stack of its own in WORK/run/ (emptied first): redis-server on a Unix socket,
   `streamgate serve` with an API key, and `streamgate farm --workers WORKERS --job-timeout
   JOB_TIMEOUT`;
3. uploads every file through the API (`POST /v1/uploads?profile=fast`, the sealed-upload path),
   follows the queue's event stream until every job has ended (or nothing has moved for --stall
   seconds), checking /healthz and Redis every second;
4. reports outcomes overall and by kind, failure reasons, the longest attempt, and the safety
   properties, writes WORK/results/<time>.json (every file's outcome) and WORK/results/<time>.md
   (the tables, for BENCHMARKS.md), and ends with one `summary key=value …` line.

Exits 1 when a safety property fails: a canary connection, a crafted file's job publishing, a
crafted playlist/manifest/list not refused as "not accepted", a cap not holding, a worker or
transcode crashing (a signal the worker did not send), a job past its time limit or never ending,
the server or Redis going down, uploads or staging left behind, or a control clip failing.
"""
import argparse
import base64
import collections
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

# Time a killed transcode may take past --job-timeout before its attempt counts as over the limit:
# the worker polls every 100 ms and waits up to 5 s for the process group to go.
LIMIT_GRACE_S = 30


def log(message):
    print("bench/hostile: " + message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# A minimal Redis client (RESP2 over the Unix socket): enough to tail the events stream.


class Redis:
    def __init__(self, path, timeout=5):
        self.path = path
        self.timeout = timeout
        self.sock = None
        self.buffer = b""

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)
        self.buffer = b""

    def call(self, *args):
        if self.sock is None:
            self.connect()
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            raw = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
        try:
            self.sock.sendall(b"".join(parts))
            return self._reply()
        except (OSError, ConnectionError):
            self.close()
            raise

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def _line(self):
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exact(self, count):
        while len(self.buffer) < count + 2:
            chunk = self.sock.recv(max(65536, count))
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            return None if length < 0 else self._exact(length).decode("utf-8", "replace")
        if kind == b"*":
            length = int(rest)
            return None if length < 0 else [self._reply() for _ in range(length)]
        raise RuntimeError("redis: unexpected reply %r" % line)


# ------------------------------------------------------------------------------------------------
# The canary: a TCP listener and a UDP socket on one loopback port. Nothing may reach either.


class Canary:
    def __init__(self):
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.tcp.listen(64)
        self.tcp.settimeout(0.5)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.udp.settimeout(0.5)
        self.hits = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        for target in (self._accept, self._receive):
            threading.Thread(target=target, daemon=True).start()

    def _record(self, what):
        with self.lock:
            self.hits.append(what)
        log("CANARY HIT: %s" % what)

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, peer = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(1)
            try:
                first = conn.recv(200)
            except OSError:
                first = b""
            conn.close()
            self._record({"protocol": "tcp", "peer": "%s:%d" % peer, "first_bytes": first.decode("latin-1"), "at": time.time()})

    def _receive(self):
        while not self.stopped.is_set():
            try:
                data, peer = self.udp.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            self._record({"protocol": "udp", "peer": "%s:%d" % peer, "first_bytes": data[:200].decode("latin-1"), "at": time.time()})

    def count(self, protocol=None):
        with self.lock:
            return sum(1 for h in self.hits if protocol is None or h["protocol"] == protocol)

    def stop(self):
        self.stopped.set()
        self.tcp.close()
        self.udp.close()


# ------------------------------------------------------------------------------------------------
# The stack


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    def __init__(self, args, run):
        self.args = args
        self.run = run
        self.procs = {}
        self.socket = str(run / "redis.sock")
        self.store = run / "store"
        self.port = free_port()
        self.api_key = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
        self.env = dict(os.environ)
        self.env["STREAMGATE_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
        self.env["STREAMGATE_API_KEYS"] = self.api_key
        self.env["STREAMGATE_REDIS_URL"] = "unix://" + self.socket
        self.env.pop("STREAMGATE_FFMPEG_LOG", None)

    def spawn(self, name, command):
        out = open(self.run / ("%s.log" % name), "ab")
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)
        self.procs[name] = proc
        with open(self.args.pids, "a") as pids:
            pids.write("%d\n" % proc.pid)
        return proc

    def start(self):
        self.spawn("redis", ["redis-server", "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700", "--dir", str(self.run),
                             "--save", "", "--appendonly", "no", "--daemonize", "no"])
        deadline = time.time() + 20
        redis = Redis(self.socket)
        while True:
            try:
                if redis.call("PING") == "PONG":
                    break
            except (OSError, ConnectionError, RuntimeError):
                redis.close()
            if time.time() > deadline:
                raise SystemExit("bench/hostile: redis-server did not start (see %s)" % (self.run / "redis.log"))
            time.sleep(0.05)
        self.store.mkdir(parents=True, exist_ok=True)
        self.spawn("serve", [self.args.streamgate, "serve", "--store", str(self.store), "--redis", "unix://" + self.socket,
                             "--host", "127.0.0.1", "--port", str(self.port)] + self.args.serve_args.split())
        self.spawn("farm", [self.args.streamgate, "farm", "--workers", str(self.args.workers), "--store", str(self.store),
                            "--profiles", str(Path(self.args.root) / "profiles"), "--logs", str(self.run / "logs"),
                            "--job-timeout", str(self.args.job_timeout)] + self.args.farm_args.split())
        deadline = time.time() + 60
        while True:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise SystemExit("bench/hostile: %s exited at start (%s); see %s" % (name, proc.returncode, self.run / (name + ".log")))
            now_ms = int(time.time() * 1000)
            try:
                healthy = http_get(self.port, "/healthz")[0] == 200
                workers = redis.call("ZCOUNT", "{sg}:workers", now_ms - 15000, "+inf")
            except (OSError, ConnectionError, RuntimeError, http.client.HTTPException):
                healthy, workers = False, 0
                redis.close()
            if healthy and workers >= self.args.workers:
                break
            if time.time() > deadline:
                raise SystemExit("bench/hostile: the stack was not ready within 60 s (healthz %s, %d workers)" % (healthy, workers))
            time.sleep(0.2)
        redis.close()

    def alive(self, name):
        return self.procs[name].poll() is None

    def stop(self):
        # The farm drains (its workers have nothing left), then the server, then Redis.
        for name in ("farm", "serve", "redis"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def http_get(port, path, headers=None, timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------------
# Uploads


def upload_all(stack, entries, files_dir, concurrency):
    """POSTs every file; fills entry["upload"] with the answer."""
    pending = collections.deque(enumerate(entries))
    lock = threading.Lock()

    def worker():
        conn = None
        while True:
            with lock:
                if not pending:
                    break
                index, entry = pending.popleft()
            body = (files_dir / entry["file"]).read_bytes()
            path = "/v1/uploads?profile=fast&asset_id=h%05d" % index
            headers = {"Authorization": "Bearer " + stack.api_key, "Content-Type": "application/octet-stream"}
            for attempt in range(3):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=120)
                    started = time.time()
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    text = response.read().decode("utf-8", "replace")
                    try:
                        answer = json.loads(text)
                    except ValueError:
                        answer = {"error": text[:200]}
                    entry["upload"] = {"status": response.status, "answer": answer, "at": started, "asset": "h%05d" % index}
                    break
                except (OSError, http.client.HTTPException) as error:
                    if conn is not None:
                        conn.close()
                    conn = None
                    entry["upload"] = {"status": 0, "answer": {"error": "upload failed: %s" % error}, "at": time.time()}
                    time.sleep(0.5)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    return threads


# ------------------------------------------------------------------------------------------------
# Following the queue


class Follower:
    """Tails {sg}:events: every attempt's start and end, every job's final state."""

    TERMINAL = {"succeeded", "failed", "dead", "cancelled"}

    def __init__(self, socket_path):
        self.redis = Redis(socket_path)
        self.last = "0-0"
        self.attempts = collections.defaultdict(list)  # job -> [{attempt, start, end, state, error, worker}]
        self.final = {}
        self.last_event = time.time()
        self.last_end = None

    def poll(self):
        reply = self.redis.call("XREAD", "COUNT", "10000", "STREAMS", "{sg}:events", self.last)
        if not reply:
            return 0
        entries = reply[0][1]
        for entry_id, fields in entries:
            self.last = entry_id
            event = dict(zip(fields[0::2], fields[1::2]))
            job, state = event.get("job"), event.get("state")
            if not job or not state:
                continue
            at = int(event.get("at", "0")) / 1000
            runs = self.attempts[job]
            if state == "running":
                if "attempt" in event:
                    runs.append({"attempt": int(event["attempt"]), "start": at, "end": None, "state": None, "error": None,
                                 "worker": event.get("worker")})
                continue
            if state == "queued" and not runs:
                continue
            if runs and runs[-1]["end"] is None and state in self.TERMINAL | {"retrying", "queued"}:
                runs[-1].update(end=at, state="released" if state == "queued" else state, error=event.get("error"))
            if state in self.TERMINAL:
                self.final[job] = {"state": state, "error": event.get("error"), "at": at}
                self.last_end = at
        self.last_event = time.time()
        return len(entries)

    def open_attempts(self):
        return [(job, runs[-1]) for job, runs in self.attempts.items() if runs and runs[-1]["end"] is None]


class Health:
    """Checks /healthz and Redis every second, and that the processes are still there."""

    def __init__(self, stack):
        self.stack = stack
        self.checks = 0
        self.http_failures = []
        self.redis_failures = []
        self.process_exits = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        redis = Redis(self.stack.socket, timeout=5)
        while not self.stopped.is_set():
            self.checks += 1
            try:
                status = http_get(self.stack.port, "/healthz", timeout=5)[0]
                if status != 200:
                    self.http_failures.append((time.time(), "status %d" % status))
            except (OSError, http.client.HTTPException) as error:
                self.http_failures.append((time.time(), str(error)))
            try:
                if redis.call("PING") != "PONG":
                    self.redis_failures.append((time.time(), "no PONG"))
            except (OSError, ConnectionError, RuntimeError) as error:
                self.redis_failures.append((time.time(), str(error)))
                redis.close()
            for name in ("redis", "serve", "farm"):
                if name not in self.process_exits and not self.stack.alive(name):
                    self.process_exits[name] = (time.time(), self.stack.procs[name].returncode)
                    log("%s exited (%s)" % (name, self.stack.procs[name].returncode))
            self.stopped.wait(1)
        redis.close()

    def stop(self):
        self.stopped.set()
        self.thread.join(5)


# ------------------------------------------------------------------------------------------------
# Reasons


def reason_text(error, source):
    """A failure reason without its file name, for grouping."""
    if not error:
        return ""
    text = error
    if source and source in text:
        text = text.replace(source + ": ", "").replace(source, "FILE")
    text = re.sub(r"/[^\s:]*\.sealed", "FILE", text)
    return text


def category(reason):
    text = re.sub(r"0x[0-9a-fA-F]+", "N", reason)
    text = re.sub(r"(?<![A-Za-z0-9_])-?\d+(\.\d+)?(?![A-Za-z0-9_])", "N", text)
    text = re.sub(r"'[^']*'", "'…'", text)
    return text[:160]


def clear_reason(error, source):
    """One line, naming the file, then why."""
    if not error or "\n" in error or not source:
        return False
    # A dead letter starts "gave up after N attempts: " and then says what the last attempt said.
    body = re.sub(r"^gave up after \d+ attempts: ", "", error)
    return body.startswith(source + ": ") and len(body) > len(source) + 4


# ------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--streamgate", required=True)
    parser.add_argument("--pids", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--job-timeout", type=float, default=120)
    parser.add_argument("--uploads", type=int, default=4, help="uploads at once")
    parser.add_argument("--stall", type=float, default=0, help="give up when no job event for this long (default: 3 × job timeout)")
    parser.add_argument("--farm-args", default="")
    parser.add_argument("--serve-args", default="")
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--only", default="", help="only kinds matching this regular expression")
    args = parser.parse_args()
    stall = args.stall or 3 * args.job_timeout

    work = Path(args.work)
    canary = Canary()
    canary_dir = work / "canary"
    log("canary listener on 127.0.0.1:%d (tcp and udp), canary files in %s" % (canary.port, canary_dir))
    generated = subprocess.run([sys.executable, str(Path(args.root) / "bench/hostile/generate.py"), "--out", str(work), "--seed", str(args.seed),
                                "--canary-dir", str(canary_dir), "--canary-port", str(canary.port)], stdout=subprocess.PIPE, text=True)
    if generated.returncode != 0:
        raise SystemExit("bench/hostile: generate.py failed")
    log(generated.stdout.strip())
    files_dir = work / "files"
    manifest = json.loads((files_dir / "manifest.json").read_text())
    entries = manifest["files"]
    if args.only:
        entries = [e for e in entries if re.search(args.only, e["kind"])]
    kinds = sorted({e["kind"] for e in entries})

    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    (run / "logs").mkdir(parents=True)
    stack = Stack(args, run)
    log("starting redis-server, streamgate serve (port %d) and streamgate farm --workers %d --job-timeout %g in %s"
        % (stack.port, args.workers, args.job_timeout, run))
    stack.start()
    health = Health(stack)
    follower = Follower(stack.socket)
    exit_code = 0
    try:
        started = time.time()
        threads = upload_all(stack, entries, files_dir, args.uploads)
        last_print = 0
        over_limit = {}
        stalled = False
        while True:
            try:
                follower.poll()
            except (OSError, ConnectionError, RuntimeError) as error:
                # The health checks record Redis being away; keep trying until the stall limit.
                follower.redis.close()
                log("cannot read the events stream: %s" % error)
            uploading = any(t.is_alive() for t in threads)
            jobs = {e["upload"]["answer"].get("job_id") for e in entries if e.get("upload", {}).get("status") == 202}
            jobs.discard(None)
            done = len([j for j in jobs if j in follower.final])
            now = time.time()
            for job, attempt in follower.open_attempts():
                if now - attempt["start"] > args.job_timeout + LIMIT_GRACE_S and job not in over_limit:
                    over_limit[job] = now - attempt["start"]
                    log("job %s has run %.0f s, past its limit of %g s" % (job, now - attempt["start"], args.job_timeout))
            if now - last_print >= 5:
                last_print = now
                running = len(follower.open_attempts())
                uploaded = sum(1 for e in entries if "upload" in e)
                log("%4.0f s: uploaded %d/%d, ended %d/%d, running %d" % (now - started, uploaded, len(entries), done, len(jobs), running))
            if not uploading and done >= len(jobs):
                break
            if not uploading and now - follower.last_event > stall:
                stalled = True
                log("no job event for %.0f s: giving up on %d jobs that have not ended" % (stall, len(jobs) - done))
                break
            time.sleep(0.5)
        ended = follower.last_end or time.time()
        wall = max(ended - started, 0.001)

        # Every job's record, through the API.
        records = {}
        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
        for entry in entries:
            job = entry.get("upload", {}).get("answer", {}).get("job_id")
            if not job:
                continue
            conn.request("GET", "/v1/jobs/" + job, headers={"Authorization": "Bearer " + stack.api_key})
            response = conn.getresponse()
            body = response.read()
            if response.status == 200:
                records[job] = json.loads(body)
        conn.close()
        workers_output = subprocess.run([args.streamgate, "workers"], env=stack.env, capture_output=True, text=True).stdout
        queue_output = subprocess.run([args.streamgate, "queue"], env=stack.env, capture_output=True, text=True).stdout
        redis = Redis(stack.socket)
        farm_status = redis.call("HGETALL", "{sg}:farm:default:desired:status") or []
        farm_status = dict(zip(farm_status[0::2], farm_status[1::2]))
        redis.close()
        health.stop()
        still_up = {name: stack.alive(name) for name in ("redis", "serve", "farm")}
    finally:
        health.stop()
        stack.stop()
        canary.stop()

    # --- Outcomes ------------------------------------------------------------------------------
    uploads_dir = stack.store / "uploads"
    for entry in entries:
        upload = entry.get("upload", {"status": 0, "answer": {"error": "not uploaded"}})
        answer = upload["answer"]
        job = answer.get("job_id")
        entry["job"] = job
        entry["source"] = str(uploads_dir / ("%s.sealed" % answer["upload_id"])) if answer.get("upload_id") else None
        if upload["status"] != 202 or not job:
            entry["outcome"] = "rejected"
            entry["reason"] = "HTTP %d: %s" % (upload["status"], answer.get("error", ""))
            entry["attempts"] = []
            continue
        record = records.get(job, {})
        final = follower.final.get(job)
        state = record.get("state") or (final or {}).get("state") or "unfinished"
        entry["outcome"] = state if state in Follower.TERMINAL else "unfinished"
        entry["error"] = record.get("error") or (final or {}).get("error")
        entry["reason"] = reason_text(entry["error"], entry["source"])
        entry["attempts"] = follower.attempts.get(job, [])
        entry["attempt_errors"] = [a["error"] for a in entry["attempts"] if a["error"]]
        durations = [a["end"] - a["start"] for a in entry["attempts"] if a["end"] is not None]
        entry["longest_attempt_s"] = max(durations) if durations else None
        entry["over_limit"] = job in over_limit

    outcome_names = ["succeeded", "failed", "dead", "cancelled", "rejected", "unfinished"]
    totals = collections.Counter(e["outcome"] for e in entries)
    by_kind = {kind: collections.Counter(e["outcome"] for e in entries if e["kind"] == kind) for kind in kinds}

    # Crashes: transcodes that ended by a signal the worker did not send (its kills are timeouts,
    # cancels and releases, recorded as such), and worker processes the farm had to start again.
    signal_pattern = re.compile(r"transcode killed by signal (\d+)")
    crashed_transcodes = []
    for entry in entries:
        for attempt in entry.get("attempts", []):
            match = signal_pattern.search(attempt.get("error") or "")
            if match:
                crashed_transcodes.append((entry["file"], attempt["error"]))
    worker_logs = "".join(p.read_text(errors="replace") for p in sorted((run / "logs").glob("*.log")))
    crash_lines = [line for line in worker_logs.splitlines() if "transcode crashed" in line]
    farm_log = (run / "farm.log").read_text(errors="replace") if (run / "farm.log").exists() else ""
    worker_deaths = len(re.findall(r"worker died", farm_log))
    workers_started = len(re.findall(r"started a worker", farm_log))
    restarts = int(farm_status.get("restarts", "0") or 0)
    crashed_workers = max(worker_deaths, restarts, workers_started - args.workers) + len(crashed_transcodes)

    # Limits.
    timeouts = sum(1 for e in entries for a in e.get("attempts", []) if "timed out after" in (a.get("error") or ""))
    attempts_all = [(a["end"] - a["start"], e) for e in entries for a in e.get("attempts", []) if a["end"] is not None]
    longest_attempt, longest_entry = max(attempts_all, key=lambda t: t[0]) if attempts_all else (0, None)
    past_limit = [e["file"] for e in entries
                  if e.get("over_limit") or (e.get("longest_attempt_s") or 0) > args.job_timeout + LIMIT_GRACE_S]
    never_ended = [e["file"] for e in entries if e["outcome"] == "unfinished"]

    # Safety of named files and caps.
    escaped = [e["file"] for e in entries if e.get("names_others") and e["outcome"] == "succeeded"]
    not_accepted_misses = [e for e in entries if e["expect"] == "not-accepted"
                           and not (e["outcome"] == "failed" and "not accepted" in (e.get("error") or ""))]
    fail_misses = [e for e in entries if e["expect"] == "fail" and e["outcome"] == "succeeded"]
    control_misses = [e for e in entries if e["expect"] == "succeed" and e["outcome"] != "succeeded"]

    # Failure reasons: one line naming the file, and why.
    failures = [e for e in entries if e["outcome"] in ("failed", "dead")]
    unclear = [e for e in failures if not clear_reason(e.get("error"), e.get("source"))]
    categories = collections.defaultdict(list)
    for e in failures:
        categories[(e["outcome"], category(e["reason"]))].append(e)

    # Left behind: sealed uploads, staging folders, assets published by jobs that did not succeed.
    left_uploads = sorted(p.name for p in uploads_dir.glob("*")) if uploads_dir.exists() else []
    staging = stack.store / "staging"
    left_staging = sorted(p.name for p in staging.glob("*")) if staging.exists() else []
    assets = stack.store / "assets"
    published = {p.name for p in assets.iterdir()} if assets.exists() else set()
    succeeded_assets = {e["upload"]["asset"] for e in entries if e["outcome"] == "succeeded"}
    published_wrongly = sorted(published - succeeded_assets)

    # --- Report --------------------------------------------------------------------------------
    rate = len(entries) * 60 / wall
    out = []
    say = out.append
    say("bench/hostile: %d files in %d kinds (seed %d, digest %s), commit %s, %d workers, --job-timeout %g s, %s"
        % (len(entries), len(kinds), args.seed, manifest["digest"], args.commit, args.workers, args.job_timeout, manifest["ffmpeg"]))
    say("wall %.1f s from the first upload to the last job's end: %.1f files/minute" % (wall, rate))
    say("outcomes: " + "  ".join("%s %d" % (name, totals.get(name, 0)) for name in outcome_names))
    if longest_entry is not None:
        say("longest attempt: %.1f s (%s, %s); attempts timed out: %d" % (longest_attempt, longest_entry["file"], longest_entry["outcome"], timeouts))
    say("")
    header = "| kind | files | succeeded | failed | dead | rejected | other | expected | longest s |"
    table = [header, "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for kind in kinds:
        group = [e for e in entries if e["kind"] == kind]
        counts = by_kind[kind]
        other = sum(v for k, v in counts.items() if k not in ("succeeded", "failed", "dead", "rejected"))
        expects = sorted({e["expect"] for e in group})
        longest = max([e.get("longest_attempt_s") or 0 for e in group])
        table.append("| %s | %d | %d | %d | %d | %d | %d | %s | %.1f |" % (
            kind, len(group), counts.get("succeeded", 0), counts.get("failed", 0), counts.get("dead", 0), counts.get("rejected", 0), other,
            "/".join(expects), longest))
    table.append("| **all** | %d | %d | %d | %d | %d | %d | | %.1f |" % (
        len(entries), totals.get("succeeded", 0), totals.get("failed", 0), totals.get("dead", 0), totals.get("rejected", 0),
        totals.get("cancelled", 0) + totals.get("unfinished", 0), longest_attempt))
    out.extend(table)
    say("")
    say("failure reasons (%d categories; the file's name replaced by FILE, numbers by N):" % len(categories))
    reasons_table = ["| jobs | outcome | reason | kinds |", "|---:|---|---|---|"]
    for (outcome, text), group in sorted(categories.items(), key=lambda kv: -len(kv[1])):
        kinds_of = collections.Counter(e["kind"] for e in group)
        reasons_table.append("| %d | %s | %s | %s |" % (len(group), outcome, text.replace("|", "\\|"),
                                                       ", ".join("%s %d" % kv for kv in kinds_of.most_common(4))
                                                       + (" …" if len(kinds_of) > 4 else "")))
    out.extend(reasons_table)
    rejected = [e for e in entries if e["outcome"] == "rejected"]
    if rejected:
        say("")
        say("refused at upload: " + "; ".join(sorted({"%s (%s)" % (e["reason"], e["kind"]) for e in rejected})))
    say("")
    checks = []

    def check(ok, text):
        checks.append(ok)
        say("%s %s" % ("ok  " if ok else "FAIL", text))

    say("safety:")
    check(canary.count() == 0, "canary connections: %d (tcp %d, udp %d)" % (canary.count(), canary.count("tcp"), canary.count("udp")))
    check(not escaped, "crafted files that name other files or URLs and published (a named file was read): %d%s"
          % (len(escaped), (" " + ", ".join(escaped)) if escaped else ""))
    crafted = [e for e in entries if e["expect"] == "not-accepted"]
    check(not not_accepted_misses, "playlists, manifests, lists, SDP and images refused as \"not accepted\": %d of %d%s" % (
        len(crafted) - len(not_accepted_misses), len(crafted),
        "".join("\n       %s: %s %s" % (e["file"], e["outcome"], e.get("error") or e.get("reason")) for e in not_accepted_misses)))
    capped = [e for e in entries if e["expect"] == "fail"]
    check(not fail_misses, "files over a cap or naming a file through a real container that did not publish: %d of %d%s" % (
        len(capped) - len(fail_misses), len(capped), "".join("\n       %s published" % e["file"] for e in fail_misses)))
    check(crashed_workers == 0, "crashed workers: %d (worker processes died %d, farm restarts %d, workers started %d for %d; "
          "transcodes killed by a signal the worker did not send %d)" % (crashed_workers, worker_deaths, restarts, workers_started, args.workers,
                                                                         len(crashed_transcodes))
          + "".join("\n       %s: %s" % c for c in crashed_transcodes[:20]))
    check(not past_limit and not stalled, "jobs past their limit (%g s + %d s): %d; stalled: %s" % (
        args.job_timeout, LIMIT_GRACE_S, len(past_limit), "yes" if stalled else "no") + "".join("\n       " + f for f in past_limit[:20]))
    check(not never_ended, "jobs that never ended: %d" % len(never_ended) + "".join("\n       " + f for f in never_ended[:20]))
    check(not health.http_failures and not health.redis_failures and all(still_up.values()) and not health.process_exits,
          "server and redis up throughout: %d checks, /healthz failures %d, redis PING failures %d, exited %s"
          % (health.checks, len(health.http_failures), len(health.redis_failures),
             ", ".join("%s (%s)" % (k, v[1]) for k, v in health.process_exits.items()) or "none"))
    check(not left_uploads and not left_staging and not published_wrongly,
          "left behind: sealed uploads %d, staging folders %d, assets published without a succeeded job %d"
          % (len(left_uploads), len(left_staging), len(published_wrongly)))
    check(not control_misses, "valid control clips published: %d of %d%s" % (
        len([e for e in entries if e["expect"] == "succeed"]) - len(control_misses), len([e for e in entries if e["expect"] == "succeed"]),
        "".join("\n       %s: %s %s" % (e["file"], e["outcome"], e.get("error")) for e in control_misses)))
    say("quality:")
    say("%s failure reasons that are one line naming the file and why: %d of %d%s" % (
        "ok  " if not unclear else "WARN", len(failures) - len(unclear), len(failures),
        "".join("\n       %s: %r" % (e["file"], e.get("error")) for e in unclear[:20])))
    say("")
    say("workers at the end (streamgate workers):")
    out.extend("  " + line for line in workers_output.rstrip().splitlines())
    say("queue at the end (streamgate queue):")
    out.extend("  " + line for line in queue_output.rstrip().splitlines())
    if crash_lines:
        say("worker log lines about crashed transcodes: %d (first: %s)" % (len(crash_lines), crash_lines[0][:300]))

    summary = ("summary files=%d per_minute=%.1f failed=%d dead=%d succeeded=%d crashed_workers=%d canary_connections=%d escaped=%d "
               "rejected=%d timeouts=%d longest_s=%.1f unclear_reasons=%d checks_failed=%d" % (
                   len(entries), rate, totals.get("failed", 0), totals.get("dead", 0), totals.get("succeeded", 0), crashed_workers,
                   canary.count(), len(escaped), totals.get("rejected", 0), timeouts, longest_attempt, len(unclear),
                   sum(1 for ok in checks if not ok)))
    out.append("")
    out.append(summary)
    print("\n".join(out), flush=True)

    results = work / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    (results / (stamp + ".json")).write_text(json.dumps({
        "commit": args.commit, "seed": args.seed, "digest": manifest["digest"], "workers": args.workers, "job_timeout": args.job_timeout,
        "wall_s": wall, "per_minute": rate, "totals": totals, "canary": canary.hits, "crashed_transcodes": crashed_transcodes,
        "summary": summary, "files": [{k: v for k, v in e.items() if k != "upload"} | {"upload_status": e.get("upload", {}).get("status")}
                                      for e in entries],
    }, indent=1, default=str) + "\n")
    (results / (stamp + ".md")).write_text("\n".join(table) + "\n\n" + "\n".join(reasons_table) + "\n\n" + summary + "\n")
    log("results in %s/%s.{json,md}; logs in %s" % (results, stamp, run))
    if not all(checks):
        exit_code = 1
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
