#!/usr/bin/env python3
"""bench/origin's measuring half: StreamGate's origin against nginx on the same encrypted segments.

bench/origin/run.sh installs the tools, takes the release binary and makes the asset, then runs
this with the store, the binary and the knobs. Standard library only; the plumbing (processes, wrk,
/proc, the page cache, /metrics, results.jsonl) is bench/benchlib/, and the pieces are beside this
file: asset.py (the segments and the request lists), servers.py (StreamGate and nginx),
scenarios.py (the check, cold, hot and zipf) and report.py (medians, ratios, the summary).

What it does, in order:
  1. Starts the servers, checks that they return the same bytes as the store for a few segments.
  2. Cold start, ROUNDS times alternately: drop the page cache, start a fresh server (StreamGate with
     an empty L1; nginx with an empty open_file_cache) and request every segment once, in order.
  3. Hot set: fresh servers, HOT segments requested over and over, ROUNDS × DURATION s alternately.
  4. Zipf: the same servers, WARMUP s each unmeasured, then ROUNDS × DURATION s alternately over a
     Zipf(ZIPF_S) mix of every segment; StreamGate's L1 hit rate from /metrics deltas.
Throughout, StreamGate's VmRSS (and nginx's, master and workers together) is sampled every 100 ms,
and each hot and Zipf round records the server's CPU time a request (steadier than req/s on a
shared, noisy machine).
Medians of the rounds, ratios StreamGate ÷ nginx, one JSON line per load run appended to
WORK/results.jsonl, and last the `summary …` line.

Baseline mode (--baseline OLD_BINARY): a third server, `baseline`, is an older StreamGate started
with the same arguments on the same store (its own extra ones, --baseline-serve-args, since it may
not know the new binary's flags). Every scenario measures the three servers, in the order
streamgate, baseline, nginx in odd rounds and reversed in even ones, and the report adds the ratios
streamgate ÷ baseline (req/s, p99, CPU a request) to the summary: a change on the hot path measured
side by side, with nginx as the common yardstick.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # bench/, for benchlib
from benchlib import Failure, Results, run, say  # noqa: E402
from asset import Asset  # noqa: E402
from report import report  # noqa: E402
from scenarios import SCENARIOS, Run, check, cold, hot, zipf  # noqa: E402
from servers import Nginx, NginxProxy, StreamGate  # noqa: E402
from benchlib import Metrics  # noqa: E402


def count_upstream_gets(bench, metrics_port):
    """Every measured load also records `s3_gets`: the GETs the S3 server answered meanwhile (its
    SeaweedFS_s3_request_total{type="GET"}), so the report can say GETs per 10,000 requests."""
    load = bench.load

    def gets():
        total = Metrics.fetch(metrics_port).sum("SeaweedFS_s3_request_total", type="GET")
        if total is None:
            raise Failure(f"the S3 server's metrics on :{metrics_port} have no SeaweedFS_s3_request_total{{type=\"GET\"}}")
        return total

    def counted(server, list_file, mode, duration, label):
        before = gets()
        figures = load(server, list_file, mode, duration, label)
        figures["s3_gets"] = gets() - before
        return figures

    bench.load = counted


# --- The run --------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streamgate", required=True)
    parser.add_argument("--nginx", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--asset", default="bench")
    parser.add_argument("--master-key-file", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold-rounds", type=int, default=5, help="cold passes per server (each takes about a second)")
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=10, help="wrk's per-request timeout, s")
    parser.add_argument("--hot", type=int, default=8)
    parser.add_argument("--zipf-s", type=float, default=1.1)
    parser.add_argument("--zipf-samples", type=int, default=300_000)
    parser.add_argument("--min-segments", type=int, default=1000)
    parser.add_argument("--l1-bytes", type=int, default=268_435_456)
    parser.add_argument("--drop-caches", type=int, default=1)
    parser.add_argument("--serve-args", default="", help="extra arguments for streamgate serve")
    parser.add_argument("--baseline", default="", help="an older streamgate binary to run beside the new one (baseline mode)")
    parser.add_argument("--baseline-serve-args", default="", help="extra arguments for the baseline's serve")
    parser.add_argument("--asset-key", default="")
    parser.add_argument("--started", type=float, default=None, help="when run.sh started (epoch s), for the total time")
    parser.add_argument("--s3-store", default="", help="bench/origin-s3: StreamGate serves this s3://bucket/prefix")
    parser.add_argument("--s3-endpoint", default="", help="bench/origin-s3: the S3 server (http://host:port)")
    parser.add_argument("--s3-version-path", default="", help="bench/origin-s3: /BUCKET/PREFIX/objects/ASSET/VERSION/, nginx's upstream")
    parser.add_argument("--s3-metrics-port", type=int, default=0, help="bench/origin-s3: the S3 server's Prometheus port (its GET count)")
    args = parser.parse_args()
    for name in ("rounds", "cold_rounds", "duration", "connections", "threads", "hot"):
        if getattr(args, name) < 1:
            raise Failure(f"{name.upper()} must be at least 1")
    if args.connections < args.threads:
        raise Failure("CONNECTIONS must be at least THREADS")

    work = args.work
    os.makedirs(work, exist_ok=True)
    pids_file = os.path.join(work, "pids")
    started = time.time()
    results = Results(os.path.join(work, "results.jsonl"))

    asset = Asset(args.store, args.asset, work, args.hot, args.zipf_s, args.zipf_samples, args.l1_bytes)
    if len(asset.segments) < args.min_segments:
        raise Failure(f"the asset has {len(asset.segments)} segments; the bench wants at least {args.min_segments}")
    asset.write_lists()
    lines = asset.describe()
    say(lines[0])
    say(f"load: wrk {args.threads} threads, {args.connections} connections, {args.rounds} rounds of {args.duration} s "
        f"per server for hot and zipf ({args.cold_rounds} cold passes), alternating; zipf warm-up {args.warmup} s")
    for line in lines[1:]:
        say(line)

    s3 = bool(args.s3_store)
    serve_store = args.s3_store if s3 else args.store
    serve_extra = (["--s3-endpoint", args.s3_endpoint] if s3 else []) + args.serve_args.split()
    streamgate = StreamGate(work, pids_file, args.streamgate, serve_store, args.master_key_file, args.l1_bytes, serve_extra)
    servers = {"streamgate": streamgate}
    if args.baseline:
        servers["baseline"] = StreamGate(work, pids_file, args.baseline, args.store, args.master_key_file, args.l1_bytes,
                                         args.baseline_serve_args.split(), name="baseline")
    if s3:
        upstream = args.s3_endpoint.split("://", 1)[-1]
        nginx = servers["nginx"] = NginxProxy(work, pids_file, args.nginx, upstream, f"/{args.asset}/", args.s3_version_path, args.l1_bytes)
    else:
        nginx = servers["nginx"] = Nginx(work, pids_file, args.nginx, args.store)
    bench = Run(args, asset, servers, results, pids_file)
    if s3:
        count_upstream_gets(bench, args.s3_metrics_port)

    def described(server):
        """What a running server is, for the `servers:` line."""
        if server is nginx:
            kind = f"proxy_cache {args.l1_bytes} bytes in front of {args.s3_endpoint}" if s3 else "the store's files"
            return f"nginx {args.nginx} on :{server.port}, {kind} (conf {work}/nginx/nginx.conf)"
        extra = args.serve_args if server is streamgate else args.baseline_serve_args
        return f"{server.name} {server.binary} serve … --l1-bytes {args.l1_bytes} {extra}".rstrip() + f" on :{server.port}"

    # 1. Same bytes from every server and from the store.
    check(bench, described)
    # 2. Cold start: a fresh server each pass.
    cold_method = cold(bench)
    # 3. Hot set, 4. Zipf: one process of each server for both.
    bench.start_all()
    hot(bench)
    tallies = zipf(bench)
    if s3:
        cache = os.path.join(work, "nginx", "cache")
        held = sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(cache) for name in names)
        say(f"nginx's proxy_cache held {held / 1e6:.0f} MB on disk after the zipf rounds (max_size {args.l1_bytes / 1e6:.0f} MB: "
            f"its cache manager trims in the background, so it may hold more than StreamGate's L1 may)")
    finals = {server.name: server.metrics() for server in bench.streamgates()}
    peaks = {name: {phase: bench.sampler.peak_mib(phase, name) for phase in SCENARIOS} for name in bench.names}
    bench.stop_all()
    bench.sampler.stop()
    return report(bench, tallies, finals, peaks, cold_method, started)


if __name__ == "__main__":
    run("bench/origin", main)
