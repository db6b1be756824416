#!/usr/bin/env python3
"""bench/origin's measuring half: StreamGate's origin against nginx on the same encrypted segments.

bench/origin/run.sh installs the tools, takes the release binary and makes the asset, then runs
this with the store, the binary and the knobs. Standard library only; the plumbing (processes, wrk,
/proc, /metrics, results.jsonl) is bench/benchlib.py.

What it does, in order:
  1. Starts both servers, checks that they return the same bytes as the store for a few segments.
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
"""

import argparse
import grp
import os
import pwd
import random
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # bench/, for benchlib
from benchlib import (Failure, Metrics, Process, Results, RssSampler, Wrk, cpu_us_per_request, http_once,  # noqa: E402
                      log_lines, median, moved, ratio, run, say, status_kib, warn, with_children, with_cpu)

LUA = os.path.join(HERE, "paths.lua")
SEGMENT = re.compile(r"^[0-9]+\.ts$")
SCENARIOS = ("cold", "hot", "zipf")
SERVERS = ("streamgate", "nginx")
FIGURES = ("rps", "mb_per_s", "p50_ms", "p99_ms")


# --- The asset ------------------------------------------------------------------------------------

def inventory(store, asset):
    """Every segment of the published version: [(relative path 'asset/rendition/NNNNN.ts', size)]."""
    root = os.path.join(store, "assets", asset)
    if not os.path.isdir(root):
        raise Failure(f"{root} does not exist: asset {asset} is not published in {store}")
    segments = []
    for rendition in sorted(os.listdir(root)):
        folder = os.path.join(root, rendition)
        if not os.path.isdir(folder) or rendition == "keys":
            continue
        for name in sorted(os.listdir(folder)):
            if SEGMENT.match(name):
                segments.append((f"{asset}/{rendition}/{name}", os.path.getsize(os.path.join(folder, name))))
    return segments


def write_list(path, lines):
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def zipf_list(segments, s, samples, seed):
    """Popularity ranks assigned to the segments at random; `samples` draws; plus the probabilities."""
    rng = random.Random(seed)
    ranked = [path for path, _ in segments]
    rng.shuffle(ranked)
    weights = [1.0 / (rank ** s) for rank in range(1, len(ranked) + 1)]
    total = sum(weights)
    probabilities = {path: weight / total for path, weight in zip(ranked, weights)}
    cumulative, running = [], 0.0
    for weight in weights:
        running += weight
        cumulative.append(running)
    return rng.choices(ranked, cum_weights=cumulative, k=samples), probabilities


def oracle_hit_rate(segments, probabilities, budget):
    """Hit rate of a cache of `budget` bytes that holds exactly the most requested segments."""
    sizes = dict(segments)
    used, hit = 0, 0.0
    for path in sorted(probabilities, key=probabilities.get, reverse=True):
        if used + sizes[path] > budget:
            continue
        used += sizes[path]
        hit += probabilities[path]
    return hit


# --- Servers --------------------------------------------------------------------------------------

class StreamGate(Process):
    prefix = "/v/"

    def __init__(self, work, pids_file, binary, store, key_file, l1_bytes, extra):
        super().__init__("streamgate", pids_file)
        self.work, self.binary, self.store, self.key_file, self.l1_bytes, self.extra = work, binary, store, key_file, l1_bytes, extra
        self.starts = 0

    def start(self):
        self.starts += 1
        environment = dict(os.environ)
        environment.pop("STREAMGATE_MASTER_KEY", None)  # the key file is the one the store was made with
        self.start_http(lambda port: [self.binary, "serve", "--store", self.store, "--host", "127.0.0.1", "--port", str(port),
                                      "--l1-bytes", str(self.l1_bytes), "--master-key-file", self.key_file, *self.extra],
                        os.path.join(self.work, f"streamgate-{self.starts}.log"), environment)

    def metrics(self):
        return Metrics.fetch(self.port)


class Nginx(Process):
    prefix = "/"

    def __init__(self, work, pids_file, binary, store):
        super().__init__("nginx", pids_file)
        self.work, self.binary, self.root = work, binary, os.path.join(store, "assets")
        self.starts = 0

    def start(self):
        self.starts += 1
        self.start_http(self.command_for, os.path.join(self.work, f"nginx-{self.starts}.log"))

    def command_for(self, port):
        """Writes nginx.conf for `port`; returns the command that runs nginx with it."""
        prefix = os.path.join(self.work, "nginx")
        for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(prefix, "tmp", folder), exist_ok=True)
        # As root the master drops its workers to `user`; the store's version folders are 0700 and
        # belong to whoever made them, so the workers keep the invoking user's identity.
        user = ""
        if os.geteuid() == 0:
            user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as out:
            out.write(f"""# Written by bench/origin for one run; the anchor serves the store's files as they are.
daemon off;
master_process on;
worker_processes auto;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    types {{
        video/mp2t ts;
        application/vnd.apple.mpegurl m3u8;
    }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=10000 inactive=60s;
    # nginx closes a keep-alive connection after 1000 requests by default; StreamGate never does.
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {self.root};
        location = /healthz {{
            return 200 "ok\\n";
        }}
    }}
}}
""")
        return [self.binary, "-p", prefix + "/", "-c", conf, "-e", f"{prefix}/error.log"]

    def pids(self):
        """The master and its workers."""
        return with_children(self.pid) if self.pid else []


def l1_moved(before, after):
    """(hits, misses) of StreamGate's L1 between two /metrics readings; None when the counters are missing."""
    counts = [metrics.sum("streamgate_origin_cache_total", level="l1", result=result)
              for metrics in (before, after) for result in ("hit", "miss")]
    if None in counts:
        return None
    return counts[2] - counts[0], counts[3] - counts[1]


# --- Page cache -----------------------------------------------------------------------------------

def drop_page_cache(paths, allowed):
    """Empties the page cache of the store's files; returns how it was done."""
    os.sync()
    if allowed:
        try:
            with open("/proc/sys/vm/drop_caches", "w") as control:
                control.write("3\n")
            return "drop_caches"
        except OSError as error:
            reason = f"echo 3 > /proc/sys/vm/drop_caches refused ({error.strerror})"
    else:
        reason = "DROP_CACHES=0"
    # Without the privilege: ask the kernel to forget each file's clean pages, which needs none.
    for path in paths:
        try:
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(descriptor)
        except OSError:
            pass
    return f"posix_fadvise(DONTNEED) per file; {reason}"


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
    parser.add_argument("--asset-key", default="")
    parser.add_argument("--started", type=float, default=None, help="when run.sh started (epoch s), for the total time")
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

    segments = inventory(args.store, args.asset)
    if len(segments) < args.min_segments:
        raise Failure(f"the asset has {len(segments)} segments; the bench wants at least {args.min_segments}")
    total_bytes = sum(size for _, size in segments)
    renditions = sorted({path.split("/")[1] for path, _ in segments})
    segment_files = [os.path.join(args.store, "assets", path) for path, _ in segments]

    lists = os.path.join(work, "lists")
    os.makedirs(lists, exist_ok=True)
    cold_list = os.path.join(lists, "cold.txt")
    write_list(cold_list, [path for path, _ in segments])
    step = len(segments) / args.hot
    hot_paths = [segments[int(i * step + step / 2)][0] for i in range(args.hot)]
    hot_list = os.path.join(lists, "hot.txt")
    write_list(hot_list, hot_paths)
    zipf_samples, probabilities = zipf_list(segments, args.zipf_s, args.zipf_samples, seed=20261123)
    zipf_list_path = os.path.join(lists, "zipf.txt")
    write_list(zipf_list_path, zipf_samples)
    oracle = oracle_hit_rate(segments, probabilities, args.l1_bytes)

    sizes = sorted(size for _, size in segments)
    say(f"asset: {args.asset} in {args.store}: {len(segments)} segments in {len(renditions)} renditions "
        f"({', '.join(renditions)}), {total_bytes / 2**20:.0f} MiB, segment median {median(sizes) / 1e3:.0f} kB "
        f"(min {sizes[0] / 1e3:.0f}, max {sizes[-1] / 1e3:.0f})")
    say(f"load: wrk {args.threads} threads, {args.connections} connections, {args.rounds} rounds of {args.duration} s "
        f"per server for hot and zipf ({args.cold_rounds} cold passes), alternating; zipf warm-up {args.warmup} s")
    say(f"hot set: {len(hot_paths)} segments ({sum(dict(segments)[p] for p in hot_paths) / 2**20:.1f} MiB)")
    say(f"zipf: s={args.zipf_s}, {args.zipf_samples} draws over {len(segments)} segments ({len(set(zipf_samples))} drawn "
        f"at least once); a {args.l1_bytes / 2**20:.0f} MiB cache holding exactly the most popular ones would hit {oracle:.3f}")

    sampler = RssSampler()
    streamgate = StreamGate(work, pids_file, args.streamgate, args.store, args.master_key_file, args.l1_bytes,
                            args.serve_args.split())
    nginx = Nginx(work, pids_file, args.nginx, args.store)
    servers = {"streamgate": streamgate, "nginx": nginx}
    wrk = Wrk(LUA, "origin-bench", work, pids_file, args.threads, args.timeout)
    hwm = []  # StreamGate's VmHWM at the end of each of its processes, MiB
    problems = []

    def load(server, list_file, mode, duration, label):
        return wrk.run(server.port, list_file, mode, duration, f"{label}-{server.name}", args.connections, (server.prefix,))

    def start(server):
        server.start()
        sampler.watch(server.name, server.pids)

    def stop(server):
        if server is streamgate and streamgate.pid:
            peak = status_kib(streamgate.pid, "VmHWM")
            if peak:
                hwm.append(peak / 1024)
            errors = log_lines(streamgate.log, "error|critical|fatal")
            if errors:
                problems.append(f"streamgate log {streamgate.log}: {len(errors)} error lines, first: {errors[0]}")
        sampler.unwatch(server.name)
        server.stop()

    def record(scenario, round_number, server, figures, **extra):
        results.record(scenario, round=round_number, server=server.name, **figures, **extra)
        flags = ""
        if figures["non_2xx_3xx"] or figures["socket_errors"]:
            flags = f"  (non-2xx/3xx {figures['non_2xx_3xx']}, socket errors {figures['errors']})"
            problems.append(f"{scenario} round {round_number} {server.name}: non-2xx/3xx {figures['non_2xx_3xx']}, "
                            f"socket errors {figures['errors']}")
        say(f"  {scenario:<5} round {round_number} {server.name:<10} {figures['rps']:>9.0f} req/s "
            f"{figures['mb_per_s']:>8.1f} MB/s  p50 {figures['p50_ms']:>7.2f} ms  p99 {figures['p99_ms']:>7.2f} ms"
            f"  {figures['requests']} requests in {figures['seconds']:.2f} s"
            + (f"  cpu {extra['cpu_us_per_request']:.0f} µs/req" if extra.get("cpu_us_per_request") is not None else "")
            + (f"  l1 hit {extra['l1_hit_rate']:.3f}" if extra.get("l1_hit_rate") is not None else "")
            + flags)

    def order(round_number):
        return ("streamgate", "nginx") if round_number % 2 else ("nginx", "streamgate")

    # 1. Same bytes from both servers and from the store.
    start(streamgate)
    start(nginx)
    say(f"servers: streamgate {args.streamgate} serve … --l1-bytes {args.l1_bytes} {args.serve_args}".rstrip()
        + f" on :{streamgate.port}; nginx {args.nginx} on :{nginx.port} (conf {work}/nginx/nginx.conf)")
    checked = [segments[0][0], segments[len(segments) // 2][0], segments[-1][0], hot_paths[0]]
    for path in checked:
        with open(os.path.join(args.store, "assets", path), "rb") as stored:
            expected = stored.read()
        for server in (streamgate, nginx):
            status, body = http_once(server.port, "GET", server.prefix + path)
            if status != 200:
                raise Failure(f"{server.name} answered {status} for {server.prefix + path}")
            if body != expected:
                raise Failure(f"{server.name} returned {len(body)} bytes for {server.prefix + path} that differ from "
                              f"the {len(expected)} bytes of the stored file")
    say(f"check: both servers return the stored bytes for {len(checked)} segments ({', '.join(checked)})")
    stop(streamgate)
    stop(nginx)

    # 2. Cold start.
    sampler.set_phase("cold")
    say(f"cold: a fresh server after emptying the page cache, every segment once in order "
        f"({len(segments)} requests, {total_bytes / 1e6:.0f} MB)")
    cold_method = None
    for round_number in range(1, args.cold_rounds + 1):
        for name in order(round_number):
            server = servers[name]
            cold_method = drop_page_cache(segment_files, args.drop_caches == 1)
            start(server)
            before = streamgate.metrics() if server is streamgate else None
            figures = load(server, cold_list, "once", max(300, args.duration), "cold")
            extra = {}
            if server is streamgate:
                after = streamgate.metrics()
                extra = {key: moved(before, after, f"streamgate_origin_{key}_total") for key in ("store_reads", "warmed")}
            if figures["requests"] != len(segments):
                problems.append(f"cold round {round_number} {name}: {figures['requests']} answers for {len(segments)} requests")
            record("cold", round_number, server, figures, **extra)
            stop(server)
    say(f"  page cache emptied with: {cold_method}")

    # 3. Hot set, 4. Zipf: one process of each for both.
    start(streamgate)
    start(nginx)
    sampler.set_phase("hot")
    say(f"hot: {len(hot_paths)} segments over and over (2 s warm-up each first)")
    for server in (streamgate, nginx):
        load(server, hot_list, "cycle", 2, "hot-warmup")
    for round_number in range(1, args.rounds + 1):
        for name in order(round_number):
            server = servers[name]
            figures, cpu = with_cpu(server.pids(), lambda: load(server, hot_list, "cycle", args.duration, "hot"))
            record("hot", round_number, server, figures, cpu_us_per_request=cpu_us_per_request(cpu, figures["requests"]))

    sampler.set_phase("zipf")
    say(f"zipf: warm-up {args.warmup} s each, then measured rounds")
    zipf_warm = None
    for server in (streamgate, nginx):
        before = streamgate.metrics() if server is streamgate else None
        figures = load(server, zipf_list_path, "cycle", args.warmup, "zipf-warmup")
        if server is streamgate:
            l1 = l1_moved(before, streamgate.metrics())
            if l1 and sum(l1) > 0:
                zipf_warm = l1[0] / sum(l1)
        say(f"  warm-up {server.name:<10} {figures['rps']:>9.0f} req/s" +
            (f"  l1 hit {zipf_warm:.3f}" if server is streamgate and zipf_warm is not None else ""))
    hits = misses = 0.0
    zipf_reads = {}
    counters_missing = False
    for round_number in range(1, args.rounds + 1):
        for name in order(round_number):
            server = servers[name]
            before = streamgate.metrics() if server is streamgate else None
            figures, cpu = with_cpu(server.pids(), lambda: load(server, zipf_list_path, "cycle", args.duration, "zipf"))
            extra = {"cpu_us_per_request": cpu_us_per_request(cpu, figures["requests"])}
            if server is streamgate:
                after = streamgate.metrics()
                l1 = l1_moved(before, after)
                if l1 is None:
                    counters_missing = True
                    extra["l1_hit_rate"] = None
                else:
                    hits += l1[0]
                    misses += l1[1]
                    extra.update(l1_hits=l1[0], l1_misses=l1[1], l1_hit_rate=l1[0] / sum(l1) if sum(l1) else None)
                for key in ("store_reads", "warmed"):
                    extra[key] = moved(before, after, f"streamgate_origin_{key}_total")
                    zipf_reads[key] = zipf_reads.get(key, 0) + extra[key]
            record("zipf", round_number, server, figures, **extra)
    final_metrics = streamgate.metrics()
    statuses = final_metrics.by("streamgate_origin_requests_total", "status", route="segment")
    rate_limited = final_metrics.sum("streamgate_origin_rate_limited_total")
    sg_peak = {phase: sampler.peak_mib(phase, "streamgate") for phase in SCENARIOS}
    ng_peak = {phase: sampler.peak_mib(phase, "nginx") for phase in SCENARIOS}
    stop(streamgate)
    stop(nginx)
    sampler.stop()

    # --- Report ---
    say("")
    say("medians (MB = 10^6 bytes, wrk's count: headers and bodies)")
    say(f"{'scenario':<8} {'server':<10} {'req/s':>9} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    medians = {}
    for scenario in SCENARIOS:
        for name in SERVERS:
            m = medians[(scenario, name)] = {key: median(results.pick(key, scenario=scenario, server=name)) for key in FIGURES}
            say(f"{scenario:<8} {name:<10} {m['rps']:>9.0f} {m['mb_per_s']:>8.1f} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f}")
    say("ratios streamgate ÷ nginx (req/s and MB/s: higher is better; latency: lower is better)")
    ratios = {}
    for scenario in SCENARIOS:
        sg, ng = medians[(scenario, "streamgate")], medians[(scenario, "nginx")]
        r = ratios[scenario] = {key: ratio(sg[key], ng[key]) for key in FIGURES}
        say(f"  {scenario:<5} req/s {r['rps']:.3f}  MB/s {r['mb_per_s']:.3f}  p50 {r['p50_ms']:.3f}  p99 {r['p99_ms']:.3f}")
    say("server CPU a request (user + system, whole process; medians of the rounds), µs:")
    for scenario in ("hot", "zipf"):
        cpu = {name: results.pick("cpu_us_per_request", scenario=scenario, server=name) for name in SERVERS}
        cpu = {name: median(values) if values else None for name, values in cpu.items()}
        if None not in cpu.values():
            say(f"  {scenario:<5} streamgate {cpu['streamgate']:.0f}  nginx {cpu['nginx']:.0f}  ratio {ratio(cpu['streamgate'], cpu['nginx']):.2f}")

    if counters_missing:
        print("bench/origin: error: /metrics has no streamgate_origin_cache_total{level=\"l1\",result=\"hit\"|\"miss\"}"
              " counters; the zipf hit rate is not reported", file=sys.stderr, flush=True)
        zipf_hit = None
    elif hits + misses == 0:
        print("bench/origin: error: the L1 counters did not move during the zipf rounds", file=sys.stderr, flush=True)
        zipf_hit = None
    else:
        zipf_hit = hits / (hits + misses)
        say(f"zipf L1 hit rate after warm-up: {zipf_hit:.4f} ({hits:.0f} hits, {misses:.0f} misses over the measured rounds; "
            f"during warm-up {zipf_warm:.3f}; best possible for {args.l1_bytes / 2**20:.0f} MiB ≈ {oracle:.3f})"
            if zipf_warm is not None else f"zipf L1 hit rate after warm-up: {zipf_hit:.4f}")

    if zipf_reads:
        say(f"zipf store reads by StreamGate over the measured rounds: {zipf_reads.get('store_reads', 0):.0f} "
            f"(of which read-ahead: {zipf_reads.get('warmed', 0):.0f}) for {misses:.0f} L1 misses")
    rss_mib = max(sg_peak.values())
    say("memory (peak VmRSS sampled every 100 ms under load, MiB): "
        + "  ".join(f"{phase} streamgate {sg_peak[phase]:.0f} / nginx {ng_peak[phase]:.0f}" for phase in sg_peak)
        + "  (nginx: master + workers)")
    say(f"streamgate VmHWM per process (MiB): {', '.join(f'{value:.0f}' for value in hwm)}")
    say(f"streamgate segment responses by status (last process): "
        f"{', '.join(f'{k}: {v:.0f}' for k, v in sorted(statuses.items())) or 'none counted'}"
        + (f"; rate limited {rate_limited:.0f}" if rate_limited else ""))
    for problem in problems:
        warn(problem)
    elapsed = time.time() - started
    total = time.time() - (args.started or started)
    say(f"measured in {elapsed:.0f} s, {total:.0f} s in all; every run and this summary appended to {results.path}")

    results.summary(
        {"hot_rps_ratio": f"{ratios['hot']['rps']:.3f}", "hot_p99_ratio": f"{ratios['hot']['p99_ms']:.3f}",
         "zipf_hit": f"{zipf_hit:.3f}" if zipf_hit is not None else "NA", "rss_mib": f"{rss_mib:.0f}"},
        asset_key=args.asset_key, segments=len(segments), asset_bytes=total_bytes,
        threads=args.threads, connections=args.connections, rounds=args.rounds, cold_rounds=args.cold_rounds,
        duration=args.duration, warmup=args.warmup, zipf_s=args.zipf_s, l1_bytes=args.l1_bytes,
        medians={f"{s}/{n}": v for (s, n), v in medians.items()}, ratios=ratios,
        zipf_hit=zipf_hit, zipf_hit_warmup=zipf_warm, zipf_oracle=oracle,
        rss_peak_mib=sg_peak, nginx_rss_peak_mib=ng_peak, vmhwm_mib=hwm,
        page_cache=cold_method, problems=problems, seconds=round(elapsed, 1),
        seconds_total=round(total, 1), streamgate=args.streamgate,
        commit=os.environ.get("BENCH_ORIGIN_COMMIT", ""))
    return 3 if zipf_hit is None else 0


if __name__ == "__main__":
    run("bench/origin", main)
