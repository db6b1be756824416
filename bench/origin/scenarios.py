"""bench/origin/scenarios.py: the check and the three scenarios, run over every server alike.

The servers are StreamGate and nginx, in that order (baseline mode puts an older StreamGate, named
`baseline`, between them); in round N they go in that order when N is odd, reversed when it is even
(benchlib.alternate), so each pair takes turns at going first. A Run holds what the scenarios
share: the servers, wrk, the RSS sampler, the results and the problems noticed on the way.
"""

import os

from benchlib import (Failure, RssSampler, Wrk, alternate, cpu_us_per_request, drop_page_cache, http_once, log_lines,
                      moved, say, status_kib, with_cpu)
from servers import l1_moved

LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paths.lua")
SCENARIOS = ("cold", "hot", "zipf")
FIGURES = ("rps", "mb_per_s", "p50_ms", "p99_ms")
READS = ("store_reads", "warmed")  # StreamGate's store reads, read-ahead included, and read-ahead alone


class Run:
    def __init__(self, args, asset, servers, results, pids_file):
        self.args, self.asset, self.results = args, asset, results
        self.servers = servers  # {name: server}, in their first-round order
        self.names = tuple(servers)
        self.sampler = RssSampler()
        self.wrk = Wrk(LUA, "origin-bench", args.work, pids_file, args.threads, args.timeout)
        self.hwm = {name: [] for name, server in servers.items() if server.streamgate}  # VmHWM per process, MiB
        self.problems = []

    def streamgates(self):
        return [server for server in self.servers.values() if server.streamgate]

    def order(self, round_number):
        return [self.servers[name] for name in alternate(self.names, round_number)]

    def load(self, server, list_file, mode, duration, label):
        return self.wrk.run(server.port, list_file, mode, duration, f"{label}-{server.name}", self.args.connections,
                            (server.prefix,))

    def start(self, server):
        server.start()
        self.sampler.watch(server.name, server.pids)

    def stop(self, server):
        if server.streamgate and server.pid:
            peak = status_kib(server.pid, "VmHWM")
            if peak:
                self.hwm[server.name].append(peak / 1024)
            errors = log_lines(server.log, "error|critical|fatal")
            if errors:
                self.problems.append(f"{server.name} log {server.log}: {len(errors)} error lines, first: {errors[0]}")
        self.sampler.unwatch(server.name)
        server.stop()

    def start_all(self):
        for server in self.servers.values():
            self.start(server)

    def stop_all(self):
        for server in self.servers.values():
            self.stop(server)

    def record(self, scenario, round_number, server, figures, **extra):
        self.results.record(scenario, round=round_number, server=server.name, **figures, **extra)
        flags = ""
        if figures["non_2xx_3xx"] or figures["socket_errors"]:
            flags = f"  (non-2xx/3xx {figures['non_2xx_3xx']}, socket errors {figures['errors']})"
            self.problems.append(f"{scenario} round {round_number} {server.name}: non-2xx/3xx {figures['non_2xx_3xx']}, "
                                 f"socket errors {figures['errors']}")
        say(f"  {scenario:<5} round {round_number} {server.name:<10} {figures['rps']:>9.0f} req/s "
            f"{figures['mb_per_s']:>8.1f} MB/s  p50 {figures['p50_ms']:>7.2f} ms  p99 {figures['p99_ms']:>7.2f} ms"
            f"  {figures['requests']} requests in {figures['seconds']:.2f} s"
            + (f"  cpu {extra['cpu_us_per_request']:.0f} µs/req" if extra.get("cpu_us_per_request") is not None else "")
            + (f"  l1 hit {extra['l1_hit_rate']:.3f}" if extra.get("l1_hit_rate") is not None else "")
            + flags)


def check(run, described):
    """Starts every server and checks that each returns the stored bytes for a few segments."""
    run.start_all()
    say("servers: " + "; ".join(described(server) for server in run.servers.values()))
    segments = run.asset.segments
    checked = [segments[0][0], segments[len(segments) // 2][0], segments[-1][0], run.asset.hot_paths[0]]
    for path in checked:
        expected = run.asset.stored_bytes(path)
        for server in run.servers.values():
            status, body = http_once(server.port, "GET", server.prefix + path)
            if status != 200:
                raise Failure(f"{server.name} answered {status} for {server.prefix + path}")
            if body != expected:
                raise Failure(f"{server.name} returned {len(body)} bytes for {server.prefix + path} that differ from "
                              f"the {len(expected)} bytes of the stored file")
    every = "both servers" if len(run.servers) == 2 else f"all {len(run.servers)} servers"
    say(f"check: {every} return the stored bytes for {len(checked)} segments ({', '.join(checked)})")
    run.stop_all()


def cold(run):
    """A fresh server after emptying the page cache, every segment once in order; returns how the
    page cache was emptied."""
    args, asset = run.args, run.asset
    run.sampler.set_phase("cold")
    say(f"cold: a fresh server after emptying the page cache, every segment once in order "
        f"({len(asset.segments)} requests, {asset.total_bytes / 1e6:.0f} MB)")
    method = None
    for round_number in range(1, args.cold_rounds + 1):
        for server in run.order(round_number):
            method = drop_page_cache(asset.files, args.drop_caches == 1)
            run.start(server)
            before = server.metrics() if server.streamgate else None
            figures = run.load(server, asset.cold_list, "once", max(300, args.duration), "cold")
            extra = {}
            if server.streamgate:
                after = server.metrics()
                extra = {key: moved(before, after, f"streamgate_origin_{key}_total") for key in READS}
            if figures["requests"] != len(asset.segments):
                run.problems.append(f"cold round {round_number} {server.name}: {figures['requests']} answers "
                                    f"for {len(asset.segments)} requests")
            run.record("cold", round_number, server, figures, **extra)
            run.stop(server)
    say(f"  page cache emptied with: {method}")
    return method


def hot(run):
    """The running servers, HOT segments over and over, each round's CPU time a request."""
    args, asset = run.args, run.asset
    run.sampler.set_phase("hot")
    say(f"hot: {len(asset.hot_paths)} segments over and over (2 s warm-up each first)")
    for server in run.servers.values():
        run.load(server, asset.hot_list, "cycle", 2, "hot-warmup")
    for round_number in range(1, args.rounds + 1):
        for server in run.order(round_number):
            figures, cpu = with_cpu(server.pids(), lambda: run.load(server, asset.hot_list, "cycle", args.duration, "hot"))
            run.record("hot", round_number, server, figures, cpu_us_per_request=cpu_us_per_request(cpu, figures["requests"]))


class L1Tally:
    """A StreamGate server's L1 hits and misses and store reads over the measured zipf rounds."""

    def __init__(self):
        self.warm = None  # the hit rate during the warm-up
        self.hits = self.misses = 0.0
        self.reads = {}
        self.counters_missing = False

    @property
    def hit_rate(self):
        """None when the counters are missing or did not move."""
        if self.counters_missing or self.hits + self.misses == 0:
            return None
        return self.hits / (self.hits + self.misses)


def zipf(run):
    """The running servers, WARMUP s each unmeasured, then rounds over the Zipf mix; returns
    {name: L1Tally} for the StreamGate servers."""
    args, asset = run.args, run.asset
    tallies = {server.name: L1Tally() for server in run.streamgates()}
    run.sampler.set_phase("zipf")
    say(f"zipf: warm-up {args.warmup} s each, then measured rounds")
    for server in run.servers.values():
        before = server.metrics() if server.streamgate else None
        figures = run.load(server, asset.zipf_list, "cycle", args.warmup, "zipf-warmup")
        warm = None
        if server.streamgate:
            l1 = l1_moved(before, server.metrics())
            if l1 and sum(l1) > 0:
                warm = tallies[server.name].warm = l1[0] / sum(l1)
        say(f"  warm-up {server.name:<10} {figures['rps']:>9.0f} req/s" + (f"  l1 hit {warm:.3f}" if warm is not None else ""))
    for round_number in range(1, args.rounds + 1):
        for server in run.order(round_number):
            before = server.metrics() if server.streamgate else None
            figures, cpu = with_cpu(server.pids(), lambda: run.load(server, asset.zipf_list, "cycle", args.duration, "zipf"))
            extra = {"cpu_us_per_request": cpu_us_per_request(cpu, figures["requests"])}
            if server.streamgate:
                tally, after = tallies[server.name], server.metrics()
                l1 = l1_moved(before, after)
                if l1 is None:
                    tally.counters_missing = True
                    extra["l1_hit_rate"] = None
                else:
                    tally.hits += l1[0]
                    tally.misses += l1[1]
                    extra.update(l1_hits=l1[0], l1_misses=l1[1], l1_hit_rate=l1[0] / sum(l1) if sum(l1) else None)
                for key in READS:
                    extra[key] = moved(before, after, f"streamgate_origin_{key}_total")
                    tally.reads[key] = tally.reads.get(key, 0) + extra[key]
            run.record("zipf", round_number, server, figures, **extra)
    return tallies
