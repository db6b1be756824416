#!/usr/bin/env python3
"""bench/gate's measuring half: StreamGate's NFT gate under load (issue 5).

bench/gate/run.sh installs the tools, takes the release binary and runs this with the repository's
.venv Python (standard library + eth-account; the plumbing is bench/benchlib.py). There is no
drop-in alternative to StreamGate's gate to run beside it, so every figure here is StreamGate's alone.

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
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # bench/, for benchlib
from benchlib import (HTTP, ROOT, Failure, Metrics, Process, Redis, RedisServer, Results, Wrk,  # noqa: E402
                      cpu_us_per_request, http_once, log_lines, moved, run, say, warn, with_cpu)
from holders import DOMAIN, Chain, chain_batch, holder_keys, issue_nonces, now_text, sign_all, siwe_message  # noqa: E402

LUA = os.path.join(HERE, "requests.lua")
ASSET = "gated"
OPEN_ASSET = "open"  # the same clip without a policy: the key route without the gate, as a control
SIWE_URI = "https://localhost/"
OWN_KEYS = "{sg}:gate:own:*"


def loadavg():
    try:
        return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load ?"


def nonzero(counts):
    """{key: int(value)} without the zero series (counters registered up front show as 0)."""
    return {key: int(value) for key, value in sorted(counts.items()) if value}


def delta_by(after, before):
    return {key: after.get(key, 0.0) - before.get(key, 0.0) for key in sorted(set(after) | set(before))
            if after.get(key, 0.0) - before.get(key, 0.0)}


def write_list(path, rows):
    with open(path, "w") as out:
        for method, target, token, body in rows:
            for field in (method, target, token, body):
                if "\t" in field or "\n" in field:
                    raise Failure("a request field holds a tab or a newline")
            out.write(f"{method}\t{target}\t{token}\t{body}\n")


# --- StreamGate -------------------------------------------------------------------------------------

class Serve(Process):
    def __init__(self, pids_file, folder, binary, store, redis_url, chain, env, extra):
        super().__init__("streamgate serve", pids_file)
        self.folder, self.binary, self.store, self.redis_url, self.chain = folder, binary, store, redis_url, chain
        self.env, self.extra = env, extra
        self.starts = 0
        self.logs = []

    def start(self, label, multicall=False):
        self.starts += 1
        chain_id = self.chain.info["chain_id"]

        def command(port):
            multicall_args = ["--multicall", f"{chain_id}={self.chain.info['contracts']['multicall3']}"] if multicall else []
            return [self.binary, "serve", "--store", self.store, "--host", "127.0.0.1", "--port", str(port),
                    "--redis", self.redis_url, "--siwe-domain", DOMAIN, "--siwe-uri", SIWE_URI,
                    "--rpc", f"{chain_id}={self.chain.url}", *multicall_args, *self.extra]

        self.start_http(command, os.path.join(self.folder, f"serve-{self.starts}-{label}.log"), self.env, within=90)
        self.logs.append(self.log)

    def metrics(self):
        return Metrics.fetch(self.port)

    def error_lines(self):
        return [f"{os.path.basename(path)}: {line}" for path in self.logs
                for line in log_lines(path, "error|critical|fatal|warning")]


# --- The run -----------------------------------------------------------------------------------------

def line(label, figures, suffix=""):
    say(f"  {label:<22} {figures['rps']:>9.0f} req/s  p50 {figures['p50_ms']:>6.2f} ms  p99 {figures['p99_ms']:>6.2f} ms"
        f"  max {figures['max_ms']:>7.2f} ms  {figures['requests']} requests in {figures['seconds']:.2f} s"
        f"  non-2xx {figures['non_2xx_3xx']}  socket errors {figures['socket_errors']}{suffix}")


def cpu_suffix(cpu, seconds, count, what="a request"):
    """What serve's CPU time over a load run comes to, for the run's line ("" when it could not be read)."""
    return f"  ({cpu / seconds:.2f} cores in serve, {cpu / max(1, count) * 1e6:.0f} µs CPU {what})" if cpu else ""


def parse_arguments():
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
    return args


def main():
    args = parse_arguments()
    started = time.time()
    work = args.work
    run_folder = os.path.join(work, "run")  # this run's logs and scratch files; the previous run's are replaced
    shutil.rmtree(run_folder, ignore_errors=True)
    os.makedirs(run_folder)
    pids_file = os.path.join(work, "pids")
    results = Results(os.path.join(work, "results.jsonl"))
    wrk = Wrk(LUA, "gate-bench", run_folder, pids_file, args.threads)
    problems = []

    # --- 1. Set up -----------------------------------------------------------------------------
    say(f"setup ({loadavg()})")
    t0 = time.monotonic()
    redis = RedisServer(pids_file)
    redis.start(run_folder)
    chain = Chain(pids_file)
    chain.start(sys.executable, run_folder)
    chain_id = chain.info["chain_id"]
    erc721 = chain.info["contracts"]["erc721"]
    say(f"  redis-server on {redis.socket}; chain {chain.url} (chain id {chain_id}, erc721 {erc721}, "
        f"multicall3 {chain.info['contracts']['multicall3']}) ready in {time.monotonic() - t0:.1f} s")

    master_key = base64.b64encode(os.urandom(32)).decode()
    token_secret = base64.b64encode(os.urandom(32)).decode()
    api_key = "gate-bench-" + os.urandom(16).hex()
    env = dict(os.environ, STREAMGATE_MASTER_KEY=master_key, STREAMGATE_TOKEN_SECRET=token_secret,
               STREAMGATE_API_KEYS=api_key)
    env.pop("STREAMGATE_MASTER_KEY_FILE", None)
    store = os.path.join(run_folder, "store")
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

    serve = Serve(pids_file, run_folder, args.streamgate, store, redis.url, chain, env, args.serve_args.split())
    serve.start("key-siwe")
    say(f"  streamgate serve on :{serve.port}: {' '.join(serve.command[1:])}")
    policy = json.dumps({"chain_id": chain_id, "condition": {"erc721": {"contract": erc721}}})
    status, body = http_once(serve.port, "PUT", f"/v1/assets/{ASSET}/policy",
                             {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}, policy)
    if status != 200:
        raise Failure(f"PUT policy answered {status}: {body[:300]!r}")
    say(f"  policy: {policy}")

    t3 = time.monotonic()
    nonces = issue_nonces(serve.port, args.holders)
    issued = now_text()
    messages = [siwe_message(address, nonce, issued, chain_id) for address, nonce in zip(holders, nonces)]
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
    key_list = os.path.join(run_folder, "keys.tsv")
    write_list(key_list, [("GET", key_path, token, "") for token in tokens])
    warm = wrk.run(serve.port, key_list, "cycle", args.warmup, "key-warmup", args.connections)
    line("warm-up", warm)
    if warm["non_2xx_3xx"] or warm["socket_errors"]:
        raise Failure(f"key warm-up: {warm['non_2xx_3xx']} non-2xx answers, {warm['socket_errors']} socket errors "
                      f"(log {warm['log']})")
    before = serve.metrics()
    key, key_cpu = with_cpu(serve.pids(), lambda: wrk.run(serve.port, key_list, "cycle", args.duration, "key", args.connections))
    after = serve.metrics()
    key_outcomes = delta_by(after.by("streamgate_gate_key_authorizations_total", "outcome"),
                            before.by("streamgate_gate_key_authorizations_total", "outcome"))
    key_sources = delta_by(after.by("streamgate_gate_ownership_checks_total", "source"),
                           before.by("streamgate_gate_ownership_checks_total", "source"))
    key_rpc = moved(before, after, "streamgate_gate_rpc_calls_total", method="eth_call")
    key_fast = moved(before, after, "streamgate_origin_fast_path_total")
    results.record("key_auth", **key, outcomes=key_outcomes, ownership_sources=key_sources, eth_calls=key_rpc,
                   fast_path=key_fast, serve_cpu_s=key_cpu, cpu_us_per_request=cpu_us_per_request(key_cpu, key["requests"]),
                   loadavg=os.getloadavg())
    line("measured", key, cpu_suffix(key_cpu, key["seconds"], key["requests"]))
    say(f"  authorisations by outcome: {nonzero(key_outcomes)}; ownership answers by source: {nonzero(key_sources)}; "
        f"eth_calls {key_rpc:.0f}; answered on the event loop (fast path): {key_fast / max(1, key['requests']):.1%}")
    if key["non_2xx_3xx"] or key["socket_errors"]:
        raise Failure(f"key_auth: {key['non_2xx_3xx']} non-2xx answers and {key['socket_errors']} socket errors "
                      f"(log {key['log']}); every key request of a holder must answer 200")
    # The control: the same requests (same route, same Authorization headers, same connections) for
    # the key of an asset without a policy, which the origin serves without looking at the token.
    open_list = os.path.join(run_folder, "keys-open.tsv")
    write_list(open_list, [("GET", open_path, token, "") for token in tokens])
    control, control_cpu = with_cpu(serve.pids(), lambda: wrk.run(serve.port, open_list, "cycle", args.duration, "key-open",
                                                                 args.connections))
    results.record("key_open", **control, serve_cpu_s=control_cpu, loadavg=os.getloadavg(),
                   cpu_us_per_request=cpu_us_per_request(control_cpu, control["requests"]))
    line(f"control: {OPEN_ASSET} (no policy)", control, cpu_suffix(control_cpu, control["seconds"], control["requests"]))
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
    jobs = [(keys[i % len(keys)], siwe_message(holders[i % len(holders)], nonce, issued, chain_id))
            for i, nonce in enumerate(nonces)]
    t5 = time.monotonic()
    signatures = sign_all(jobs, args.sign_processes)
    sign_seconds = time.monotonic() - t5
    say(f"  issued {n} nonces in {nonce_seconds:.1f} s; signed {n} messages with eth-account in {sign_seconds:.1f} s "
        f"({args.sign_processes} processes, {sign_seconds / n * 1000 * args.sign_processes:.1f} ms a signature per process)")
    siwe_list = os.path.join(run_folder, "siwe.tsv")
    write_list(siwe_list, [("POST", "/v1/auth/siwe", "", json.dumps({"message": message, "signature": signature}))
                           for (_, message), signature in zip(jobs, signatures)])
    before = serve.metrics()
    siwe, siwe_cpu = with_cpu(serve.pids(), lambda: wrk.run(serve.port, siwe_list, "once", 300, "siwe", args.burst_connections))
    after = serve.metrics()
    siwe_outcomes = delta_by(after.by("streamgate_gate_siwe_total", "outcome"), before.by("streamgate_gate_siwe_total", "outcome"))
    oks = siwe["requests"] - siwe["non_2xx_3xx"]
    siwe_per_s = oks / siwe["seconds"]
    results.record("siwe", **siwe, ok=oks, siwe_per_s=siwe_per_s, outcomes=siwe_outcomes, nonce_seconds=round(nonce_seconds, 2),
                   sign_seconds=round(sign_seconds, 2), serve_cpu_s=siwe_cpu, loadavg=os.getloadavg())
    line("sign-ins", siwe, cpu_suffix(siwe_cpu, siwe["seconds"], oks, "a sign-in"))
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
    rpc_list = os.path.join(run_folder, "rpc.tsv")
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
            rpc_results[mode] = rpc_burst(mode, serve, chain, redis_client, wrk, rpc_list, args, results, problems)
    finally:
        redis_client.close()
    problems += [f"serve log: {entry}" for entry in serve.error_lines()]
    chain.stop()
    redis.stop()
    report(args, started, results, problems, key, key_cpu, control, control_cpu, siwe_per_s, oks, n, rpc_results, run_folder)
    return 0


def rpc_burst(mode, serve, chain, redis_client, wrk, rpc_list, args, results, problems):
    """A fresh serve, no ownership answers in Redis, the burst once: what it cost in chain requests."""
    deleted = redis_client.delete_matching(OWN_KEYS)
    left = redis_client.count_matching(OWN_KEYS)
    if left:
        raise Failure(f"{left} ownership keys are still in Redis after deleting them")
    offset = chain.log_offset()
    serve.start(f"rpc-{mode}", multicall=(mode == "multicall"))
    # The follower's first poll (eth_chainId, then eth_getBlockByNumber) comes before the load.
    deadline = time.monotonic() + 30
    while (serve.metrics().sum("streamgate_gate_rpc_calls_total", method="eth_getBlockByNumber") or 0) < 1:
        if time.monotonic() > deadline:
            raise Failure(f"the ownership follower did not poll the chain within 30 s (log {serve.log})")
        time.sleep(0.05)
    before = serve.metrics()
    figures = wrk.run(serve.port, rpc_list, "once", 120, f"rpc-{mode}", args.burst_connections)
    time.sleep(0.3)
    # A stable reading: StreamGate's counters, the chain's log, then the counters again unchanged.
    for _ in range(50):
        after = serve.metrics()
        posts = chain.posts_since(offset)
        again = serve.metrics()
        if after.sum("streamgate_gate_rpc_duration_seconds_count") == again.sum("streamgate_gate_rpc_duration_seconds_count"):
            break
        time.sleep(0.1)
    own_left = redis_client.count_matching(OWN_KEYS)
    serve.stop()
    methods = after.by("streamgate_gate_rpc_calls_total", "method")
    window = delta_by(methods, before.by("streamgate_gate_rpc_calls_total", "method"))
    outcomes = after.by("streamgate_gate_rpc_calls_total", "outcome")
    http_total = after.sum("streamgate_gate_rpc_duration_seconds_count")
    http_metric = http_total is not None
    # Single-request HTTP exchanges: the chain-id check and the follower's polls.
    chain_id_checks = methods.get("eth_chainId", 0)
    follower = methods.get("eth_getBlockByNumber", 0) + methods.get("eth_getLogs", 0)
    follower_window = window.get("eth_getBlockByNumber", 0) + window.get("eth_getLogs", 0)
    total = http_total if http_metric else posts
    ownership_http = total - chain_id_checks - follower
    ownership_jsonrpc = methods.get("eth_call", 0) + methods.get("eth_blockNumber", 0)
    sources = after.by("streamgate_gate_ownership_checks_total", "source")
    granted = after.by("streamgate_gate_key_authorizations_total", "outcome")
    result = {
        "mode": mode, "deleted_l2_keys": deleted, "l2_keys_after": own_left,
        "http_requests_total": total, "http_requests_metric": http_metric, "chain_log_posts": posts,
        "ownership_http_requests": ownership_http, "ownership_jsonrpc_requests": ownership_jsonrpc,
        "follower_http_requests": follower, "follower_http_requests_during_load": follower_window,
        "chain_id_checks": chain_id_checks, "jsonrpc_by_method": methods, "jsonrpc_by_method_during_load": window,
        "rpc_outcomes": outcomes, "ownership_sources": sources, "key_outcomes": granted,
    }
    results.record(f"rpc_{mode}", **figures, **result)
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
    return result


def report(args, started, results, problems, key, key_cpu, control, control_cpu, siwe_per_s, oks, n, rpc_results, run_folder):
    plain, multi = rpc_results["plain"], rpc_results["multicall"]
    say("")
    say("results (StreamGate only: nothing else does this job to compare with)")
    say(f"{'measure':<34} {'value':>12}  {'target':<12} note")

    def row(name, value, target, note):
        say(f"{name:<34} {value:>12}  {target:<12} {note}")

    row("key_auth_per_s", f"{key['rps']:.0f}", "≥ 20000", "met" if key["rps"] >= 20000 else "MISSED")
    row("key_auth_p99_ms", f"{key['p99_ms']:.2f}", "< 2", "met" if key["p99_ms"] < 2 else "MISSED")
    row("key_auth_p50_ms", f"{key['p50_ms']:.2f}", "", "")
    gate_cpu = (key_cpu / key["requests"] * 1e6) if key_cpu else None
    open_cpu = (control_cpu / control["requests"] * 1e6) if control_cpu else None
    row("control: ungated key req/s, p99", f"{control['rps']:.0f}", "", f"p99 {control['p99_ms']:.2f} ms; same requests, asset without a policy")
    if gate_cpu and open_cpu:
        row("serve CPU a key request (µs)", f"{gate_cpu:.0f}", "", f"ungated {open_cpu:.0f}: the gate costs {gate_cpu - open_cpu:.0f} µs a request")
    row("siwe_per_s", f"{siwe_per_s:.0f}", "", f"{oks} of {n} sign-ins answered 200")
    row("rpc_calls (HTTP, no Multicall3)", f"{plain['ownership_http_requests']:.0f}", "≤ 100",
        ("met" if plain["ownership_http_requests"] <= 100 else "MISSED")
        + f"; {plain['ownership_jsonrpc_requests']:.0f} JSON-RPC requests (eth_call) inside")
    row("rpc_calls_multicall (HTTP)", f"{multi['ownership_http_requests']:.0f}", "≤ 10",
        ("met" if multi["ownership_http_requests"] <= 10 else "MISSED")
        + f"; {multi['ownership_jsonrpc_requests']:.0f} JSON-RPC requests (aggregate3 eth_calls) inside")
    row("follower polls (not counted above)", f"{plain['follower_http_requests']:.0f} / {multi['follower_http_requests']:.0f}",
        "", "HTTP requests over each serve's life, plain / multicall; +1 eth_chainId check each")
    for problem in problems:
        warn(problem)
    elapsed = time.time() - started
    total_seconds = time.time() - (args.started or started)
    say(f"measured in {elapsed:.0f} s, {total_seconds:.0f} s in all ({loadavg()}); every run and this summary appended to "
        f"{os.path.relpath(results.path, ROOT)}; logs in {os.path.relpath(run_folder, ROOT)}/")
    results.summary(
        {"key_auth_per_s": f"{key['rps']:.0f}", "key_auth_p99_ms": f"{key['p99_ms']:.2f}", "siwe_per_s": f"{siwe_per_s:.0f}",
         "rpc_calls": f"{plain['ownership_http_requests']:.0f}", "rpc_calls_multicall": f"{multi['ownership_http_requests']:.0f}"},
        key_auth_per_s=round(key["rps"], 1), key_auth_p99_ms=key["p99_ms"], key_auth_p50_ms=key["p50_ms"],
        key_open_per_s=round(control["rps"], 1), key_open_p99_ms=control["p99_ms"],
        key_cpu_us=key_cpu and round(key_cpu / key["requests"] * 1e6, 1),
        key_open_cpu_us=control_cpu and round(control_cpu / control["requests"] * 1e6, 1),
        siwe_per_s=round(siwe_per_s, 1), rpc_calls=plain["ownership_http_requests"],
        rpc_calls_multicall=multi["ownership_http_requests"],
        rpc_jsonrpc_requests=plain["ownership_jsonrpc_requests"], rpc_jsonrpc_requests_multicall=multi["ownership_jsonrpc_requests"],
        holders=args.holders, siwe_n=n, rpc_requests=args.rpc_requests, threads=args.threads,
        connections=args.connections, duration=args.duration, warmup=args.warmup, problems=problems,
        seconds=round(elapsed, 1), seconds_total=round(total_seconds, 1), streamgate=args.streamgate,
        commit=args.commit, cores=os.cpu_count())


if __name__ == "__main__":
    run("bench/gate", main)
