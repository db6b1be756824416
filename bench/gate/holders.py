"""bench/gate's chain and token holders: the local chain (fixtures/chain) as a process of the run,
minting through one JSON-RPC batch, the holders' keys, and their sign-ins: nonces from
/v1/auth/nonce and EIP-4361 messages signed with eth-account (from the .venv) in a process pool.
Imported by bench.py, which puts bench/ on sys.path for benchlib.
"""

import concurrent.futures
import datetime
import hashlib
import json
import multiprocessing
import os
import signal
import urllib.request

from benchlib import HTTP, ROOT, Failure, Process

DOMAIN = "localhost"
MESSAGE_URI = "https://localhost/watch"


class Chain(Process):
    def __init__(self, pids_file):
        super().__init__("the chain", pids_file)

    def start(self, python, folder):
        self.ready_file = os.path.join(folder, "chain.json")
        self.spawn([python, os.path.join(ROOT, "fixtures/chain/chain.py"), "--port", "0", "--ready-file", self.ready_file,
                    "--verbose", "--exit-with-parent"], os.path.join(folder, "chain.log"))
        # About 1 s idle; several times that while Swift builds.
        self.ready_or_fail(lambda: os.path.exists(self.ready_file), 180, "write its ready file")
        with open(self.ready_file) as ready:
            self.info = json.load(ready)

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


# --- Sign-ins (eth-account) -------------------------------------------------------------------------

def holder_keys(count):
    """Deterministic private keys: SHA-256 of a label (below the curve order with overwhelming odds)."""
    return ["0x" + hashlib.sha256(f"streamgate bench/gate holder {i}".encode()).hexdigest() for i in range(count)]


def siwe_message(address, nonce, issued_at, chain_id):
    return (f"{DOMAIN} wants you to sign in with your Ethereum account:\n{address}\n\n"
            f"Watch the gated film.\n\nURI: {MESSAGE_URI}\nVersion: 1\nChain ID: {chain_id}\n"
            f"Nonce: {nonce}\nIssued At: {issued_at}")


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
