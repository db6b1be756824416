"""benchlib.driver: a bench driver's run and the processes it starts.

run() wraps the driver's main(); every Process it starts (servers, redis-server, the chain) has its
pid in the run's pids file, for run.sh's trap, and is stopped when main() ends, however it ends.
"""

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
_name = "bench"
_running = []  # Processes started and not stopped yet, oldest first: run() stops them at the end


class Failure(Exception):
    """Stops the bench with a reason (run() prints it after the processes are stopped)."""


def say(text=""):
    print(text, flush=True)


def warn(text):
    print(f"{_name}: warning: {text}", file=sys.stderr, flush=True)


def run(name, main):
    global _name
    _name = name

    def terminated(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)  # run.sh's trap sends it: stop the servers on the way out
    try:
        try:
            status = main()
        finally:
            for process in reversed(list(_running)):
                try:
                    process.stop()
                except Exception as error:  # keep stopping the others
                    warn(f"stopping {process.name}: {error}")
    except Failure as failure:
        print(f"{name}: {failure}", file=sys.stderr, flush=True)
        status = 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr, flush=True)
        status = 130
    sys.exit(status)


def tail(path, lines=15):
    try:
        with open(path, errors="replace") as log:
            return "".join(log.readlines()[-lines:])
    except OSError:
        return ""


def log_lines(path, words):
    """The lines of a log that hold one of `words` (a regular expression alternation) as a word."""
    try:
        with open(path, errors="replace") as log:
            return [line.rstrip() for line in log if re.search(rf"\b({words})\b", line, re.I)]
    except OSError:
        return []


# --- HTTP -------------------------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HTTP:
    """One keep-alive connection to 127.0.0.1:port (reconnects when the server closes it)."""

    def __init__(self, port, timeout=30.0):
        self.port, self.timeout = port, timeout
        self.connection = None

    def request(self, method, path, headers=None, body=None):
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                payload = body.encode() if isinstance(body, str) else body
                self.connection.request(method, path, body=payload, headers=headers or {})
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def http_once(port, method, path, headers=None, body=None, timeout=10.0):
    client = HTTP(port, timeout)
    try:
        return client.request(method, path, headers, body)
    finally:
        client.close()


# --- Processes --------------------------------------------------------------------------------------

class Process:
    """A child process, its output in a log, its pid appended to the run's pids file."""

    def __init__(self, name, pids_file):
        self.name, self.pids_file = name, pids_file
        self.process = self.log = self.command = self.port = None

    def spawn(self, command, log_path, env=None):
        self.command, self.log = command, log_path
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        with open(self.pids_file, "a") as pids:
            pids.write(f"{self.process.pid}\n")
        _running.append(self)

    @property
    def pid(self):
        """The pid while the process runs, else None."""
        return self.process.pid if self.process and self.process.poll() is None else None

    def pids(self):
        """The processes whose CPU time and memory are this server's: itself (nginx adds its workers)."""
        return [self.pid] if self.pid else []

    def wait_until(self, ready, within):
        """Polls ready() until it holds (True), or until the process exits or `within` s pass (False)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if ready():
                    return True
            except (OSError, http.client.HTTPException, Failure):
                pass  # not listening yet
            time.sleep(0.05)
        return False

    def ready_or_fail(self, ready, within, what):
        if not self.wait_until(ready, within):
            raise Failure(f"{self.name} did not {what} within {within} s (log {self.log}):\n{tail(self.log)}")

    def start_http(self, command, log_path, env=None, within=60):
        """Runs command(port) on a free loopback port until GET /healthz answers 200; returns the port."""
        for _ in range(5):
            port = free_port()
            self.spawn(command(port), log_path, env)
            if self.wait_until(lambda: http_once(port, "GET", "/healthz", timeout=1)[0] == 200, within):
                self.port = port
                return port
            text = tail(log_path)
            self.stop()
            if "in use" not in text:  # "in use": another process took the port after the probe; try another
                raise Failure(f"{self.name} did not answer GET /healthz on port {port} within {within} s "
                              f"(log {log_path}):\n{text}")
        raise Failure(f"{self.name}: no free port after 5 attempts")

    def stop(self, grace=15):
        if self in _running:
            _running.remove(self)
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                warn(f"{self.name} (pid {self.process.pid}) ignored SIGTERM for {grace} s; killing it")
                self.process.kill()
                self.process.wait()
        self.port = None


class Redis:
    """A minimal RESP client on a Unix socket: enough for PING, SCAN and DEL."""

    def __init__(self, path):
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.socket.settimeout(10)
        self.socket.connect(path)
        self.reader = self.socket.makefile("rb")

    def command(self, *parts):
        out = [f"*{len(parts)}\r\n".encode()]
        for part in parts:
            data = part if isinstance(part, bytes) else str(part).encode()
            out.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
        self.socket.sendall(b"".join(out))
        return self.reply()

    def reply(self):
        line = self.reader.readline()
        if not line:
            raise Failure("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise Failure(f"redis: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.reader.read(size + 2)[:-2]
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.reply() for _ in range(size)]
        raise Failure(f"redis: unexpected reply {line!r}")

    def scan(self, pattern):
        """Every key matching `pattern`, a SCAN page at a time."""
        cursor = "0"
        while True:
            cursor_bytes, keys = self.command("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
            cursor = cursor_bytes.decode()
            yield from keys
            if cursor == "0":
                return

    def delete_matching(self, pattern):
        keys = list(self.scan(pattern))
        return sum(self.command("DEL", *keys[i:i + 1000]) for i in range(0, len(keys), 1000))

    def count_matching(self, pattern):
        return sum(1 for _ in self.scan(pattern))

    def close(self):
        self.socket.close()


def _pong(path):
    client = Redis(path)
    try:
        return client.command("PING") == "PONG"
    finally:
        client.close()


class RedisServer(Process):
    """redis-server on FOLDER/redis.sock, nothing saved to disk."""

    def __init__(self, pids_file):
        super().__init__("redis-server", pids_file)

    def start(self, folder):
        self.socket = os.path.join(folder, "redis.sock")
        self.spawn(["redis-server", "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
                    "--save", "", "--appendonly", "no", "--dir", folder, "--daemonize", "no"],
                   os.path.join(folder, "redis.log"))
        self.ready_or_fail(lambda: os.path.exists(self.socket) and _pong(self.socket), 30, "answer PING")

    @property
    def url(self):
        return "unix://" + self.socket
