"""bench/hostile/stack.py: what bench/hostile starts and watches, and how it talks to it.

A minimal Redis client (RESP2 over the Unix socket: enough to tail the events stream); the canary (a
TCP listener and a UDP socket on one loopback port, which nothing may reach); the stack (redis-server,
`streamgate serve` with an API key, `streamgate farm`), each process's pid written to the run's pids
file; and the health checks (/healthz and Redis every second, the processes still there).
"""
import base64
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


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

