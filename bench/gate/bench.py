#!/usr/bin/env python3
"""bench/gate's measuring half: StreamGate's NFT gate under load (issue 5).

bench/gate/run.sh installs the tools, builds (or takes) the binary and runs this with the
repository's .venv Python (standard library + eth-account). There is no drop-in alternative to
StreamGate's gate to run beside it, so every figure here is StreamGate's alone.

What it does, in order:
  1. Starts redis-server (a Unix socket in the run folder), the local chain (fixtures/chain, with
     --verbose so it logs every HTTP request it answers), transcodes fixtures/good/short.mp4 with
     profiles/fast.yaml into asset `gated` (and asset `open`, without a policy), and starts `streamgate serve` with gating on. Mints one
     ERC-721 token to each of HOLDERS accounts (keys derived deterministically here; holders need
     no ETH: the deployer mints, holders only sign), puts an erc721 policy on the asset, and signs
     every holder in through /v1/auth/nonce + /v1/auth/siwe: HOLDERS playback tokens.
  2. key_auth: wrk GET /v/gated/keys/<key id> with `Authorization: Bearer <token>` cycling over the
     tokens, WARMUP s unmeasured, then DURATION s measured. Every answer must be 200. Then, as a
     control, the same requests for `open`'s key (no policy: the token is not looked at) for
     DURATION s, so the gate's own cost shows (req/s, and serve's CPU time per request).
  3. siwe (over BURST_CONNECTIONS): SIWE_N nonces issued, SIWE_N messages signed by the holders
     (eth-account, in a process pool), then each POSTed to /v1/auth/siwe exactly once;
     verifications per second = 200s over the time from the first request to the last answer.
  4. rpc: twice — without Multicall3 and with `--multicall` — a fresh `serve` (empty L1) after the
     ownership answers are deleted from Redis (L2), then RPC_REQUESTS key requests from the holders,
     interleaved, over BURST_CONNECTIONS connections (100: one per holder), well within one
     ownership TTL. Counts the HTTP requests StreamGate made to the chain, split into ownership
     reads, the follower's polling and the endpoint's chain-id check, from /metrics, cross-checked
     with the chain's own request log.
Prints a table, appends one JSON line per load run and a summary to WORK/results.jsonl, and ends
with `summary key_auth_per_s=… key_auth_p99_ms=… siwe_per_s=… rpc_calls=… rpc_calls_multicall=…`.
"""

import argparse
import base64
import concurrent.futures
import datetime
import hashlib
import http.client
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LUA = os.path.join(HERE, "requests.lua")
ASSET = "gated"
OPEN_ASSET = "open"  # the same clip without a policy: the key route without the gate, as a control
DOMAIN = "localhost"
SIWE_URI = "https://localhost/"
MESSAGE_URI = "https://localhost/watch"
OWN_KEYS = "{sg}:gate:own:*"


def say(text=""):
    print(text, flush=True)


def warn(text):
    print(f"bench/gate: warning: {text}", file=sys.stderr, flush=True)


class Failure(Exception):
    pass


def loadavg():
    try:
        return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load ?"


# --- Small clients -------------------------------------------------------------------------------

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


class Redis:
    """A minimal RESP client on a Unix socket: enough for SCAN, DEL, PING and INFO."""

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
            if size < 0:
                return None
            data = self.reader.read(size + 2)
            return data[:-2]
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.reply() for _ in range(size)]
        raise Failure(f"redis: unexpected reply {line!r}")

    def delete_matching(self, pattern):
        cursor, deleted = "0", 0
        while True:
            cursor_bytes, keys = self.command("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
            cursor = cursor_bytes.decode()
            if keys:
                deleted += self.command("DEL", *keys)
            if cursor == "0":
                return deleted

    def count_matching(self, pattern):
        cursor, count = "0", 0
        while True:
            cursor_bytes, keys = self.command("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
            cursor = cursor_bytes.decode()
            count += len(keys)
            if cursor == "0":
                return count

    def close(self):
        self.socket.close()


def chain_batch(url, calls):
    body = json.dumps([{"jsonrpc": "2.0", "id": i + 1, "method": m, "params": p} for i, (m, p) in enumerate(calls)]).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        answers = json.loads(response.read())
    by_id = {answer.get("id"): answer for answer in answers}
    results = []
    for i, (method, _) in enumerate(calls):
        answer = by_id.get(i + 1)
        if answer is None or answer.get("error"):
            raise Failure(f"chain: {method} failed: {answer and answer.get('error')}")
        results.append(answer["result"])
    return results


# --- Metrics (Prometheus text format) --------------------------------------------------------------

SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?[0-9]+)?\s*$")
LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_prometheus(text):
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        if not match:
            continue
        name, raw_labels, raw_value = match.groups()
        labels = {}
        if raw_labels:
            for label in LABEL.finditer(raw_labels):
                labels[label.group(1)] = label.group(2)
        try:
            value = float(raw_value)
        except ValueError:
            continue
        samples.append((name, labels, value))
    return samples


def metric_sum(samples, name, **labels):
    values = [value for sample_name, sample_labels, value in samples
              if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items())]
    return sum(values) if values else 0.0


def metric_by(samples, name, label):
    """{label value: sum} of `name`'s series."""
    out = {}
    for sample_name, labels, value in samples:
        if sample_name == name:
            out[labels.get(label, "")] = out.get(labels.get(label, ""), 0.0) + value
    return out


def nonzero(counts):
    """{key: int(value)} without the zero series (counters registered up front show as 0)."""
    return {key: int(value) for key, value in sorted(counts.items()) if value}


def delta_by(after, before):
    return {key: after.get(key, 0.0) - before.get(key, 0.0) for key in sorted(set(after) | set(before))
            if after.get(key, 0.0) - before.get(key, 0.0)}


def has_metric(samples, name):
    return any(sample_name == name for sample_name, _, _ in samples)


# --- Processes -------------------------------------------------------------------------------------

def tail(path, lines=15):
    try:
        with open(path, errors="replace") as log:
            return "".join(log.readlines()[-lines:])
    except OSError:
        return ""


def cpu_seconds(pid):
    """utime + stime of a process, seconds."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Managed:
    """A child process whose pid goes to the pids file (run.sh's trap stops what is left)."""

    def __init__(self, pids_file):
        self.pids_file = pids_file
        self.process = None

    def spawn(self, command, log_path, env=None):
        self.log = log_path
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env, start_new_session=False)
        with open(self.pids_file, "a") as pids:
            pids.write(f"{self.process.pid}\n")

    @property
    def pid(self):
        return self.process.pid if self.process and self.process.poll() is None else None

    def stop(self, grace=15):
        if not self.process or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            warn(f"{self.process.args[0]} did not stop within {grace} s of SIGTERM; killing it")
            self.process.kill()
            self.process.wait()


class RedisServer(Managed):
    def start(self, folder):
        self.socket = os.path.join(folder, "redis.sock")
        self.spawn(["redis-server", "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
                    "--save", "", "--appendonly", "no", "--dir", folder, "--daemonize", "no"],
                   os.path.join(folder, "redis.log"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Failure(f"redis-server exited: {tail(self.log)}")
            if os.path.exists(self.socket):
                try:
                    client = Redis(self.socket)
                    if client.command("PING") == "PONG":
                        client.close()
                        return
                    client.close()
                except (OSError, Failure):
                    pass
            time.sleep(0.05)
        raise Failure(f"redis-server did not answer PING within 30 s: {tail(self.log)}")

    @property
    def url(self):
        return "unix://" + self.socket


class Chain(Managed):
    def start(self, python, folder):
        self.ready_file = os.path.join(folder, "chain.json")
        self.spawn([python, os.path.join(ROOT, "fixtures/chain/chain.py"), "--port", "0", "--ready-file", self.ready_file,
                    "--verbose", "--exit-with-parent"], os.path.join(folder, "chain.log"))
        deadline = time.monotonic() + 180  # 1 s idle; several times that while Swift builds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Failure(f"the chain exited: {tail(self.log)}")
            if os.path.exists(self.ready_file):
                with open(self.ready_file) as ready:
                    self.info = json.load(ready)
                return
            time.sleep(0.1)
        raise Failure(f"the chain was not ready within 180 s: {tail(self.log)}")

    @property
    def url(self):
        return self.info["rpc"]

    def log_offset(self):
        return os.path.getsize(self.log)

    def posts_since(self, offset):
        """HTTP POSTs the chain answered since `offset` in its log (each JSON-RPC HTTP request is one)."""
        with open(self.log, "rb") as log:
            log.seek(offset)
            return sum(1 for line in log if line.startswith(b"chain: ") and b'"POST ' in line)


class Serve(Managed):
    def __init__(self, pids_file, folder, binary, store, redis_url, chain, env, extra):
        super().__init__(pids_file)
        self.folder, self.binary, self.store, self.redis_url, self.chain = folder, binary, store, redis_url, chain
        self.env, self.extra = env, extra
        self.port = None
        self.starts = 0
        self.logs = []

    def start(self, label, multicall=False):
        self.starts += 1
        for attempt in range(5):
            port = free_port()
            command = [self.binary, "serve", "--store", self.store, "--host", "127.0.0.1", "--port", str(port),
                       "--redis", self.redis_url, "--siwe-domain", DOMAIN, "--siwe-uri", SIWE_URI,
                       "--rpc", f"{self.chain.info['chain_id']}={self.chain.url}"]
            if multicall:
                command += ["--multicall", f"{self.chain.info['chain_id']}={self.chain.info['contracts']['multicall3']}"]
            command += self.extra
            self.command = command
            log_path = os.path.join(self.folder, f"serve-{self.starts}-{label}.log")
            self.spawn(command, log_path, self.env)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    status, _ = http_once(port, "GET", "/healthz", timeout=1)
                    if status == 200:
                        self.port = port
                        self.logs.append(log_path)
                        return
                except OSError:
                    pass
                time.sleep(0.1)
            text = tail(log_path)
            self.stop()
            if "in use" in text:
                continue
            raise Failure(f"streamgate serve did not become healthy (log {log_path}):\n{text}")
        raise Failure("streamgate serve: no free port after 5 attempts")

    def metrics(self):
        status, body = http_once(self.port, "GET", "/metrics")
        if status != 200:
            raise Failure(f"GET /metrics answered {status}")
        return parse_prometheus(body.decode("utf-8", "replace"))

    def error_lines(self):
        found = []
        for path in self.logs:
            try:
                with open(path, errors="replace") as log:
                    found += [f"{os.path.basename(path)}: {line.rstrip()}" for line in log
                              if re.search(r"\b(error|critical|fatal|warning)\b", line, re.I)]
            except OSError:
                pass
        return found


# --- Signing (eth-account) ---------------------------------------------------------------------------

def holder_keys(count):
    """Deterministic private keys: SHA-256 of a label (below the curve order with overwhelming odds)."""
    return ["0x" + hashlib.sha256(f"streamgate bench/gate holder {i}".encode()).hexdigest() for i in range(count)]


def siwe_message(address, nonce, issued_at):
    return (f"{DOMAIN} wants you to sign in with your Ethereum account:\n{address}\n\n"
            f"Watch the gated film.\n\nURI: {MESSAGE_URI}\nVersion: 1\nChain ID: {CHAIN_ID[0]}\n"
            f"Nonce: {nonce}\nIssued At: {issued_at}")


CHAIN_ID = [31337]


def _sign(job):
    from eth_account import Account
    from eth_account.messages import encode_defunct
    key, message = job
    signature = Account.sign_message(encode_defunct(text=message), private_key=key).signature.hex()
    return signature if signature.startswith("0x") else "0x" + signature


def _worker_signals():
    # The pool's workers must not inherit the driver's SIGTERM handler (a traceback each at teardown).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def sign_all(jobs, processes):
    if len(jobs) < 50 or processes <= 1:
        return [_sign(job) for job in jobs]
    pool = multiprocessing.get_context("fork").Pool(processes, initializer=_worker_signals)
    try:
        signatures = pool.map(_sign, jobs, chunksize=max(1, len(jobs) // (processes * 8)))
        pool.close()
        return signatures
    finally:
        pool.terminate()
        pool.join()


def now_text():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def issue_nonces(port, count, workers=4):
    def work(n):
        client = HTTP(port)
        out = []
        try:
            for _ in range(n):
                status, body = client.request("POST", "/v1/auth/nonce")
                if status != 200:
                    raise Failure(f"POST /v1/auth/nonce answered {status}: {body[:200]!r}")
                out.append(json.loads(body)["nonce"])
        finally:
            client.close()
        return out
    shares = [count // workers + (1 if i < count % workers else 0) for i in range(workers)]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return [nonce for part in pool.map(work, shares) for nonce in part]


# --- wrk ---------------------------------------------------------------------------------------------

class Load:
    def __init__(self, args, folder, pids_file):
        self.args, self.folder, self.pids_file = args, folder, pids_file
        self.count = 0

    def run(self, port, list_file, mode, duration, label, connections=None):
        self.count += 1
        args = self.args
        connections = connections or args.connections
        command = ["wrk", "-t", str(args.threads), "-c", str(connections), "-d", f"{duration}s",
                   "--timeout", "10s", "--latency", "-s", LUA, f"http://127.0.0.1:{port}/",
                   "--", list_file, mode, str(args.threads), str(connections)]
        log_path = os.path.join(self.folder, f"wrk-{self.count:02d}-{label}.log")
        lines = []
        done_threads = [0]
        with open(log_path, "w") as log:
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, text=True, bufsize=1)
            with open(self.pids_file, "a") as pids:
                pids.write(f"{process.pid}\n")

            def read():
                for line in process.stdout:
                    lines.append(line)
                    log.write(line)
                    if line.startswith("gate-bench-thread-done"):
                        done_threads[0] += 1

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            deadline = time.monotonic() + duration + 60
            try:
                while process.poll() is None:
                    if mode == "once" and done_threads[0] >= args.threads:
                        process.send_signal(signal.SIGINT)
                    if time.monotonic() > deadline:
                        raise Failure(f"wrk did not finish (log {log_path})")
                    time.sleep(0.02)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            reader.join(timeout=10)
        if process.returncode != 0:
            raise Failure(f"wrk failed with status {process.returncode} (log {log_path}):\n{''.join(lines[-10:])}")
        report = next((line for line in lines if line.startswith("gate-bench {")), None)
        if report is None:
            raise Failure(f"wrk printed no figures (log {log_path}):\n{''.join(lines[-10:])}")
        figures = json.loads(report.split(" ", 1)[1])
        if mode == "once":
            if figures["elapsed_us"] <= 0 or done_threads[0] < args.threads:
                raise Failure(f"the pass over {list_file} did not finish within {duration} s (log {log_path})")
            seconds = figures["elapsed_us"] / 1e6
        else:
            seconds = figures["duration_us"] / 1e6
        latency, errors = figures["latency_us"], figures["errors"]
        return {
            "requests": figures["requests"],
            "seconds": round(seconds, 4),
            "rps": figures["requests"] / seconds,
            "p50_ms": latency["p50"] / 1000, "p90_ms": latency["p90"] / 1000, "p99_ms": latency["p99"] / 1000,
            "p999_ms": latency["p999"] / 1000, "max_ms": latency["max"] / 1000, "mean_ms": latency["mean"] / 1000,
            "non_2xx_3xx": errors["status"],
            "socket_errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
            "errors": errors,
            "log": os.path.relpath(log_path, ROOT),
        }


def write_list(path, rows):
    with open(path, "w") as out:
        for method, target, token, body in rows:
            for field in (method, target, token, body):
                if "\t" in field or "\n" in field:
                    raise Failure("a request field holds a tab or a newline")
            out.write(f"{method}\t{target}\t{token}\t{body}\n")


# --- The run -----------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streamgate", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--holders", type=int, default=100)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--burst-connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--siwe-n", type=int, default=3000)
    parser.add_argument("--rpc-requests", type=int, default=10000)
    parser.add_argument("--sign-processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--serve-args", default="")
    parser.add_argument("--started", type=float, default=None)
    parser.add_argument("--commit", default="")
    args = parser.parse_args()
    for name in ("holders", "duration", "connections", "burst_connections", "threads", "siwe_n", "rpc_requests"):
        if getattr(args, name) < 1:
            raise Failure(f"{name.upper()} must be at least 1")
    if args.connections < args.threads or args.burst_connections < args.threads:
        raise Failure("CONNECTIONS and BURST_CONNECTIONS must be at least THREADS")
    per_thread = args.burst_connections // args.threads
    for name in ("siwe_n", "rpc_requests"):
        if getattr(args, name) < args.threads * per_thread:
            raise Failure(f"{name.upper()} must be at least BURST_CONNECTIONS ({args.burst_connections})")

    started = time.time()
    invocation = uuid.uuid4().hex[:12]
    work = args.work
    run = os.path.join(work, "run")  # this run's logs and scratch files; the previous run's are replaced
    shutil.rmtree(run, ignore_errors=True)
    os.makedirs(run)
    pids_file = os.path.join(work, "pids")
    results_path = os.path.join(work, "results.jsonl")
    load = Load(args, run, pids_file)
    rows = []
    problems = []

    def record(scenario, figures, extra=None):
        row = {"invocation": invocation, "time": round(time.time(), 3), "scenario": scenario, **figures, **(extra or {})}
        rows.append(row)
        with open(results_path, "a") as out:
            out.write(json.dumps(row, sort_keys=True) + "\n")
        return row

    def line(label, figures, suffix=""):
        say(f"  {label:<22} {figures['rps']:>9.0f} req/s  p50 {figures['p50_ms']:>6.2f} ms  p99 {figures['p99_ms']:>6.2f} ms"
            f"  max {figures['max_ms']:>7.2f} ms  {figures['requests']} requests in {figures['seconds']:.2f} s"
            f"  non-2xx {figures['non_2xx_3xx']}  socket errors {figures['socket_errors']}{suffix}")

    redis = RedisServer(pids_file)
    chain = Chain(pids_file)
    serve = None
    python = sys.executable
    try:
        # --- 1. Set up -----------------------------------------------------------------------------
        say(f"setup ({loadavg()})")
        t0 = time.monotonic()
        redis.start(run)
        chain.start(python, run)
        CHAIN_ID[0] = chain.info["chain_id"]
        erc721 = chain.info["contracts"]["erc721"]
        say(f"  redis-server on {redis.socket}; chain {chain.url} (chain id {CHAIN_ID[0]}, erc721 {erc721}, "
            f"multicall3 {chain.info['contracts']['multicall3']}) ready in {time.monotonic() - t0:.1f} s")

        master_key = base64.b64encode(os.urandom(32)).decode()
        token_secret = base64.b64encode(os.urandom(32)).decode()
        api_key = "gate-bench-" + os.urandom(16).hex()
        env = dict(os.environ, STREAMGATE_MASTER_KEY=master_key, STREAMGATE_TOKEN_SECRET=token_secret,
                   STREAMGATE_API_KEYS=api_key)
        env.pop("STREAMGATE_MASTER_KEY_FILE", None)
        store = os.path.join(run, "store")
        t1 = time.monotonic()
        key_paths = {}
        for asset in (ASSET, OPEN_ASSET):
            transcode = subprocess.run(
                [args.streamgate, "transcode", os.path.join(ROOT, "fixtures/good/short.mp4"), "--profile",
                 os.path.join(ROOT, "profiles/fast.yaml"), "--out", store, "--asset-id", asset, "--json", "--quiet"],
                env=env, capture_output=True, text=True)
            if transcode.returncode != 0:
                raise Failure(f"streamgate transcode failed ({transcode.returncode}):\n{transcode.stderr[-2000:]}")
            key_files = sorted(name for name in os.listdir(os.path.join(store, "assets", asset, "keys")) if name.endswith(".key"))
            if not key_files:
                raise Failure(f"the transcoded asset {asset} has no keys/")
            key_paths[asset] = f"/v/{asset}/keys/{key_files[0][:-4]}"
        key_path, open_path = key_paths[ASSET], key_paths[OPEN_ASSET]
        say(f"  transcoded fixtures/good/short.mp4 (profiles/fast.yaml) twice in {time.monotonic() - t1:.1f} s: asset {ASSET} "
            f"(gated; key {key_path}) and asset {OPEN_ASSET} (no policy: the control)")

        from eth_account import Account
        keys = holder_keys(args.holders)
        holders = [Account.from_key(key).address for key in keys]
        if len(set(holders)) != len(holders):
            raise Failure("two holder keys give the same address")
        t2 = time.monotonic()
        minted = chain_batch(chain.url, [("sg_mint721", [address, hex(i + 1)]) for i, address in enumerate(holders)])
        if any(receipt.get("status") not in ("0x1", 1) for receipt in minted):
            raise Failure("a mint failed on the chain")
        say(f"  minted erc721 tokens 1–{len(holders)} to {len(holders)} distinct holders (one JSON-RPC batch) in "
            f"{time.monotonic() - t2:.1f} s")

        serve = Serve(pids_file, run, args.streamgate, store, redis.url, chain, env, args.serve_args.split())
        serve.start("key-siwe")
        say(f"  streamgate serve on :{serve.port}: {' '.join(serve.command[1:])}")
        policy = json.dumps({"chain_id": CHAIN_ID[0], "condition": {"erc721": {"contract": erc721}}})
        status, body = http_once(serve.port, "PUT", f"/v1/assets/{ASSET}/policy",
                                 {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}, policy)
        if status != 200:
            raise Failure(f"PUT policy answered {status}: {body[:300]!r}")
        say(f"  policy: {policy}")

        t3 = time.monotonic()
        nonces = issue_nonces(serve.port, args.holders)
        issued = now_text()
        messages = [siwe_message(address, nonce, issued) for address, nonce in zip(holders, nonces)]
        signatures = sign_all(list(zip(keys, messages)), args.sign_processes)
        tokens = []
        client = HTTP(serve.port)
        for address, message, signature in zip(holders, messages, signatures):
            status, body = client.request("POST", "/v1/auth/siwe", {"Content-Type": "application/json"},
                                          json.dumps({"message": message, "signature": signature}))
            if status != 200:
                raise Failure(f"sign-in of {address} answered {status}: {body[:300]!r}")
            answer = json.loads(body)
            if answer.get("address", "").lower() != address.lower():
                raise Failure(f"sign-in of {address} answered address {answer.get('address')}")
            tokens.append(answer["token"])
        # Every token opens the key; no token does not.
        for token in tokens:
            status, body = client.request("GET", key_path, {"Authorization": f"Bearer {token}"})
            if status != 200 or len(body) != 16:
                raise Failure(f"a holder's key request answered {status} with {len(body)} bytes: {body[:200]!r}")
        status, body = client.request("GET", key_path)
        if status != 401:
            raise Failure(f"a key request without a token answered {status}, not 401")
        status, body = client.request("GET", open_path)
        if status != 200 or len(body) != 16:
            raise Failure(f"the key of asset {OPEN_ASSET} (no policy) answered {status} with {len(body)} bytes")
        client.close()
        say(f"  {len(tokens)} holders signed in (nonce, eth-account signature, /v1/auth/siwe) and each fetched the "
            f"16-byte key once in {time.monotonic() - t3:.1f} s; no token → 401; {OPEN_ASSET}'s key needs none")

        # --- 2. Key authorisation -----------------------------------------------------------------------
        say("")
        say(f"key_auth: GET {key_path} with Authorization: Bearer <token> cycling over {len(tokens)} tokens; wrk "
            f"{args.threads} threads, {args.connections} connections, {args.warmup} s warm-up then {args.duration} s; then the same "
            f"requests for {OPEN_ASSET}'s key (no policy) for {args.duration} s as a control ({loadavg()})")
        key_list = os.path.join(run, "keys.tsv")
        write_list(key_list, [("GET", key_path, token, "") for token in tokens])
        warm = load.run(serve.port, key_list, "cycle", args.warmup, "key-warmup")
        line("warm-up", warm)
        if warm["non_2xx_3xx"] or warm["socket_errors"]:
            raise Failure(f"key warm-up: {warm['non_2xx_3xx']} non-2xx answers, {warm['socket_errors']} socket errors "
                          f"(log {warm['log']})")
        before = serve.metrics()
        cpu0 = cpu_seconds(serve.pid)
        key = load.run(serve.port, key_list, "cycle", args.duration, "key")
        cpu1 = cpu_seconds(serve.pid)
        after = serve.metrics()
        key_outcomes = delta_by(metric_by(after, "streamgate_gate_key_authorizations_total", "outcome"),
                                metric_by(before, "streamgate_gate_key_authorizations_total", "outcome"))
        key_sources = delta_by(metric_by(after, "streamgate_gate_ownership_checks_total", "source"),
                               metric_by(before, "streamgate_gate_ownership_checks_total", "source"))
        key_rpc = metric_sum(after, "streamgate_gate_rpc_calls_total", method="eth_call") - \
            metric_sum(before, "streamgate_gate_rpc_calls_total", method="eth_call")
        key_fast = metric_sum(after, "streamgate_origin_fast_path_total") - metric_sum(before, "streamgate_origin_fast_path_total")
        key_cpu = (cpu1 - cpu0) if None not in (cpu0, cpu1) else None
        extra = {"outcomes": key_outcomes, "ownership_sources": key_sources, "eth_calls": key_rpc, "fast_path": key_fast,
                 "serve_cpu_s": key_cpu, "cpu_us_per_request": key_cpu / key["requests"] * 1e6 if key_cpu else None,
                 "loadavg": os.getloadavg()}
        record("key_auth", key, extra)
        line("measured", key, f"  ({key_cpu / key['seconds']:.2f} cores in serve, {key_cpu / key['requests'] * 1e6:.0f} µs CPU a request)"
             if key_cpu else "")
        say(f"  authorisations by outcome: {nonzero(key_outcomes)}; ownership answers by source: {nonzero(key_sources)}; "
            f"eth_calls {key_rpc:.0f}; answered on the event loop (fast path): {key_fast / max(1, key['requests']):.1%}")
        if key["non_2xx_3xx"] or key["socket_errors"]:
            raise Failure(f"key_auth: {key['non_2xx_3xx']} non-2xx answers and {key['socket_errors']} socket errors "
                          f"(log {key['log']}); every key request of a holder must answer 200")
        # The control: the same requests (same route, same Authorization headers, same connections) for
        # the key of an asset without a policy, which the origin serves without looking at the token.
        open_list = os.path.join(run, "keys-open.tsv")
        write_list(open_list, [("GET", open_path, token, "") for token in tokens])
        cpu0 = cpu_seconds(serve.pid)
        control = load.run(serve.port, open_list, "cycle", args.duration, "key-open")
        cpu1 = cpu_seconds(serve.pid)
        control_cpu = (cpu1 - cpu0) if None not in (cpu0, cpu1) else None
        record("key_open", control, {"serve_cpu_s": control_cpu, "loadavg": os.getloadavg(),
                                     "cpu_us_per_request": control_cpu / control["requests"] * 1e6 if control_cpu else None})
        line(f"control: {OPEN_ASSET} (no policy)", control,
             f"  ({control_cpu / control['seconds']:.2f} cores in serve, {control_cpu / control['requests'] * 1e6:.0f} µs CPU a request)"
             if control_cpu else "")
        if control["non_2xx_3xx"] or control["socket_errors"]:
            problems.append(f"key_open: {control['non_2xx_3xx']} non-2xx answers, {control['socket_errors']} socket errors")
        if key_outcomes.get("granted", 0) < key["requests"]:
            problems.append(f"key_auth: {key_outcomes.get('granted', 0):.0f} granted authorisations counted for "
                            f"{key['requests']} answers")

        # --- 3. Sign-in (SIWE) verification ----------------------------------------------------------------
        say("")
        n = args.siwe_n
        say(f"siwe: {n} nonces, {n} messages signed by the holders, each POSTed to /v1/auth/siwe once ({loadavg()})")
        t4 = time.monotonic()
        nonces = issue_nonces(serve.port, n)
        nonce_seconds = time.monotonic() - t4
        issued = now_text()
        jobs = [(keys[i % len(keys)], siwe_message(holders[i % len(holders)], nonce, issued)) for i, nonce in enumerate(nonces)]
        t5 = time.monotonic()
        signatures = sign_all(jobs, args.sign_processes)
        sign_seconds = time.monotonic() - t5
        say(f"  issued {n} nonces in {nonce_seconds:.1f} s; signed {n} messages with eth-account in {sign_seconds:.1f} s "
            f"({args.sign_processes} processes, {sign_seconds / n * 1000 * args.sign_processes:.1f} ms a signature per process)")
        siwe_list = os.path.join(run, "siwe.tsv")
        write_list(siwe_list, [("POST", "/v1/auth/siwe", "", json.dumps({"message": message, "signature": signature}))
                               for (_, message), signature in zip(jobs, signatures)])
        before = serve.metrics()
        cpu0 = cpu_seconds(serve.pid)
        siwe = load.run(serve.port, siwe_list, "once", 300, "siwe", connections=args.burst_connections)
        cpu1 = cpu_seconds(serve.pid)
        after = serve.metrics()
        siwe_outcomes = delta_by(metric_by(after, "streamgate_gate_siwe_total", "outcome"),
                                 metric_by(before, "streamgate_gate_siwe_total", "outcome"))
        oks = siwe["requests"] - siwe["non_2xx_3xx"]
        siwe_per_s = oks / siwe["seconds"]
        siwe_cpu = (cpu1 - cpu0) if None not in (cpu0, cpu1) else None
        record("siwe", siwe, {"ok": oks, "siwe_per_s": siwe_per_s, "outcomes": siwe_outcomes, "nonce_seconds": round(nonce_seconds, 2),
                              "sign_seconds": round(sign_seconds, 2), "serve_cpu_s": siwe_cpu, "loadavg": os.getloadavg()})
        line("sign-ins", siwe, f"  ({siwe_cpu / siwe['seconds']:.2f} cores in serve, {siwe_cpu / max(1, oks) * 1e6:.0f} µs CPU a sign-in)"
             if siwe_cpu else "")
        say(f"  {oks} answered 200 of {siwe['requests']} ({n} sent): {siwe_per_s:.0f} verifications/s; "
            f"streamgate_gate_siwe_total by outcome: {nonzero(siwe_outcomes)}")
        if siwe["requests"] != n:
            problems.append(f"siwe: {siwe['requests']} answers for {n} sign-ins sent (log {siwe['log']})")
        if siwe["non_2xx_3xx"] or siwe["socket_errors"]:
            problems.append(f"siwe: {siwe['non_2xx_3xx']} non-2xx answers and {siwe['socket_errors']} socket errors "
                            f"for {n} valid sign-ins (log {siwe['log']})")
        if siwe_outcomes.get("accepted", 0) != oks:
            problems.append(f"siwe: {siwe_outcomes.get('accepted', 0):.0f} accepted in /metrics for {oks} 200s from wrk")
        serve.stop()

        # --- 4. JSON-RPC requests per burst of key requests ------------------------------------------
        say("")
        say(f"rpc: a fresh serve (empty L1) after deleting the ownership answers in Redis (L2), then {args.rpc_requests} key "
            f"requests from the {len(tokens)} holders (each wrk thread cycles through them, from its own first holder) over "
            f"{args.burst_connections} connections")
        rpc_list = os.path.join(run, "rpc.tsv")
        # wrk thread k takes lines floor(k·n/T)… of the list; each thread's share cycles through the holders from its
        # own starting holder (k·H/T), so the threads' first requests name different holders, not the same ones.
        rpc_rows = []
        for k in range(args.threads):
            first, last = k * args.rpc_requests // args.threads, (k + 1) * args.rpc_requests // args.threads
            offset = k * len(tokens) // args.threads
            rpc_rows += [("GET", key_path, tokens[(offset + j) % len(tokens)], "") for j in range(last - first)]
        write_list(rpc_list, rpc_rows)
        rpc_results = {}
        redis_client = Redis(redis.socket)
        try:
            for mode in ("plain", "multicall"):
                deleted = redis_client.delete_matching(OWN_KEYS)
                left = redis_client.count_matching(OWN_KEYS)
                if left:
                    raise Failure(f"{left} ownership keys are still in Redis after deleting them")
                offset = chain.log_offset()
                serve.start(f"rpc-{mode}", multicall=(mode == "multicall"))
                # The follower's first poll (eth_chainId, then eth_getBlockByNumber) comes before the load.
                deadline = time.monotonic() + 30
                while metric_sum(serve.metrics(), "streamgate_gate_rpc_calls_total", method="eth_getBlockByNumber") < 1:
                    if time.monotonic() > deadline:
                        raise Failure(f"the ownership follower did not poll the chain within 30 s (log {serve.log})")
                    time.sleep(0.05)
                before = serve.metrics()
                figures = load.run(serve.port, rpc_list, "once", 120, f"rpc-{mode}", connections=args.burst_connections)
                time.sleep(0.3)
                # A stable reading: StreamGate's counters, the chain's log, then the counters again unchanged.
                for _ in range(50):
                    after = serve.metrics()
                    posts = chain.posts_since(offset)
                    again = serve.metrics()
                    if metric_sum(after, "streamgate_gate_rpc_duration_seconds_count") == \
                            metric_sum(again, "streamgate_gate_rpc_duration_seconds_count"):
                        break
                    time.sleep(0.1)
                own_left = redis_client.count_matching(OWN_KEYS)
                serve.stop()
                methods = metric_by(after, "streamgate_gate_rpc_calls_total", "method")
                window = delta_by(methods, metric_by(before, "streamgate_gate_rpc_calls_total", "method"))
                outcomes = metric_by(after, "streamgate_gate_rpc_calls_total", "outcome")
                http_metric = has_metric(after, "streamgate_gate_rpc_duration_seconds_count")
                http_total = metric_sum(after, "streamgate_gate_rpc_duration_seconds_count") if http_metric else None
                # Single-request HTTP exchanges: the chain-id check and the follower's polls.
                chain_id_checks = methods.get("eth_chainId", 0)
                follower = methods.get("eth_getBlockByNumber", 0) + methods.get("eth_getLogs", 0)
                follower_window = window.get("eth_getBlockByNumber", 0) + window.get("eth_getLogs", 0)
                total = http_total if http_total is not None else posts
                ownership_http = total - chain_id_checks - follower
                ownership_jsonrpc = methods.get("eth_call", 0) + methods.get("eth_blockNumber", 0)
                sources = metric_by(after, "streamgate_gate_ownership_checks_total", "source")
                granted = metric_by(after, "streamgate_gate_key_authorizations_total", "outcome")
                result = {
                    "mode": mode, "deleted_l2_keys": deleted, "l2_keys_after": own_left,
                    "http_requests_total": total, "http_requests_metric": http_metric, "chain_log_posts": posts,
                    "ownership_http_requests": ownership_http, "ownership_jsonrpc_requests": ownership_jsonrpc,
                    "follower_http_requests": follower, "follower_http_requests_during_load": follower_window,
                    "chain_id_checks": chain_id_checks, "jsonrpc_by_method": methods, "jsonrpc_by_method_during_load": window,
                    "rpc_outcomes": outcomes, "ownership_sources": sources, "key_outcomes": granted,
                }
                rpc_results[mode] = result
                record(f"rpc_{mode}", figures, result)
                line(f"{mode} ({'--multicall' if mode == 'multicall' else 'JSON-RPC batches'})", figures)
                say(f"    HTTP requests to the chain over serve's life: {total:.0f} (StreamGate's "
                    f"{'streamgate_gate_rpc_duration_seconds_count' if http_metric else 'chain log (no duration metric)'}); "
                    f"the chain's log counted {posts} POSTs"
                    + ("" if total == posts else "  ← MISMATCH"))
                say(f"    = ownership reads {ownership_http:.0f} HTTP ({ownership_jsonrpc:.0f} JSON-RPC requests inside them) "
                    f"+ follower polls {follower:.0f} ({follower_window:.0f} during the load) + chain-id check {chain_id_checks:.0f}")
                say(f"    JSON-RPC requests by method: {nonzero(methods)}; outcomes: {nonzero(outcomes)}")
                say(f"    ownership answers by source: {nonzero(sources)}; key authorisations by outcome: {nonzero(granted)}; "
                    f"ownership keys in Redis after: {own_left}")
                if figures["requests"] != args.rpc_requests:
                    problems.append(f"rpc {mode}: {figures['requests']} answers for {args.rpc_requests} requests")
                if figures["non_2xx_3xx"] or figures["socket_errors"]:
                    raise Failure(f"rpc {mode}: {figures['non_2xx_3xx']} non-2xx answers and {figures['socket_errors']} socket "
                                  f"errors (log {figures['log']}); every key request of a holder must answer 200")
                if total != posts:
                    problems.append(f"rpc {mode}: StreamGate counted {total:.0f} HTTP requests to the chain, the chain logged {posts}")
                if any(v for k, v in outcomes.items() if k != "ok"):
                    problems.append(f"rpc {mode}: JSON-RPC outcomes other than ok: {outcomes}")
        finally:
            redis_client.close()

        problems += [f"serve log: {entry}" for entry in serve.error_lines()]
    finally:
        for process in (serve, chain, redis):
            if process is not None:
                try:
                    process.stop()
                except Exception as error:  # keep stopping the others
                    warn(f"stopping: {error}")

    # --- Report --------------------------------------------------------------------------------------
    plain, multi = rpc_results["plain"], rpc_results["multicall"]
    say("")
    say("results (StreamGate only: nothing else does this job to compare with)")
    say(f"{'measure':<34} {'value':>12}  {'target':<12} note")

    def row_(name, value, target, note):
        say(f"{name:<34} {value:>12}  {target:<12} {note}")

    row_("key_auth_per_s", f"{key['rps']:.0f}", "≥ 20000", "met" if key["rps"] >= 20000 else "MISSED")
    row_("key_auth_p99_ms", f"{key['p99_ms']:.2f}", "< 2", "met" if key["p99_ms"] < 2 else "MISSED")
    row_("key_auth_p50_ms", f"{key['p50_ms']:.2f}", "", "")
    gate_cpu = (key_cpu / key["requests"] * 1e6) if key_cpu else None
    open_cpu = (control_cpu / control["requests"] * 1e6) if control_cpu else None
    row_("control: ungated key req/s, p99", f"{control['rps']:.0f}", "", f"p99 {control['p99_ms']:.2f} ms; same requests, asset without a policy")
    if gate_cpu and open_cpu:
        row_("serve CPU a key request (µs)", f"{gate_cpu:.0f}", "", f"ungated {open_cpu:.0f}: the gate costs {gate_cpu - open_cpu:.0f} µs a request")
    row_("siwe_per_s", f"{siwe_per_s:.0f}", "", f"{oks} of {n} sign-ins answered 200")
    row_("rpc_calls (HTTP, no Multicall3)", f"{plain['ownership_http_requests']:.0f}", "≤ 100",
         ("met" if plain["ownership_http_requests"] <= 100 else "MISSED")
         + f"; {plain['ownership_jsonrpc_requests']:.0f} JSON-RPC requests (eth_call) inside")
    row_("rpc_calls_multicall (HTTP)", f"{multi['ownership_http_requests']:.0f}", "≤ 10",
         ("met" if multi["ownership_http_requests"] <= 10 else "MISSED")
         + f"; {multi['ownership_jsonrpc_requests']:.0f} JSON-RPC requests (aggregate3 eth_calls) inside")
    row_("follower polls (not counted above)", f"{plain['follower_http_requests']:.0f} / {multi['follower_http_requests']:.0f}",
         "", "HTTP requests over each serve's life, plain / multicall; +1 eth_chainId check each")
    for problem in problems:
        warn(problem)
    elapsed = time.time() - started
    total_seconds = time.time() - (args.started or started)
    say(f"measured in {elapsed:.0f} s, {total_seconds:.0f} s in all ({loadavg()}); every run and this summary appended to "
        f"{os.path.relpath(results_path, ROOT)}; logs in {os.path.relpath(run, ROOT)}/")
    summary = {
        "invocation": invocation, "time": round(time.time(), 3), "scenario": "summary",
        "key_auth_per_s": round(key["rps"], 1), "key_auth_p99_ms": key["p99_ms"], "key_auth_p50_ms": key["p50_ms"],
        "key_open_per_s": round(control["rps"], 1), "key_open_p99_ms": control["p99_ms"],
        "key_cpu_us": key_cpu and round(key_cpu / key["requests"] * 1e6, 1),
        "key_open_cpu_us": control_cpu and round(control_cpu / control["requests"] * 1e6, 1),
        "siwe_per_s": round(siwe_per_s, 1), "rpc_calls": plain["ownership_http_requests"],
        "rpc_calls_multicall": multi["ownership_http_requests"],
        "rpc_jsonrpc_requests": plain["ownership_jsonrpc_requests"], "rpc_jsonrpc_requests_multicall": multi["ownership_jsonrpc_requests"],
        "holders": args.holders, "siwe_n": n, "rpc_requests": args.rpc_requests, "threads": args.threads,
        "connections": args.connections, "duration": args.duration, "warmup": args.warmup, "problems": problems,
        "seconds": round(elapsed, 1), "seconds_total": round(total_seconds, 1), "streamgate": args.streamgate,
        "commit": args.commit, "cores": os.cpu_count(),
    }
    with open(results_path, "a") as out:
        out.write(json.dumps(summary, sort_keys=True) + "\n")
    say(f"summary key_auth_per_s={key['rps']:.0f} key_auth_p99_ms={key['p99_ms']:.2f} siwe_per_s={siwe_per_s:.0f} "
        f"rpc_calls={plain['ownership_http_requests']:.0f} rpc_calls_multicall={multi['ownership_http_requests']:.0f}")
    return 0


if __name__ == "__main__":
    def terminated(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
    try:
        sys.exit(main())
    except Failure as failure:
        print(f"bench/gate: {failure}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench/gate: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
