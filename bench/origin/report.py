"""bench/origin/report.py: medians of the rounds, the ratios, memory, and the summary line.

Ratios are StreamGate ÷ nginx. The summary line is
`summary hot_rps_ratio=… hot_p99_ratio=… zipf_hit=… rss_mib=…`; its row in results.jsonl holds the
medians, the ratios and the run's settings besides.
"""

import os
import sys
import time

from benchlib import median, ratio, say, warn
from scenarios import FIGURES, SCENARIOS


def error(text):
    print(f"bench/origin: error: {text}", file=sys.stderr, flush=True)


def medians_and_ratios(run):
    """{(scenario, server): {figure: median}} and {scenario: {figure: streamgate ÷ nginx}}."""
    say("")
    say("medians (MB = 10^6 bytes, wrk's count: headers and bodies)")
    say(f"{'scenario':<8} {'server':<10} {'req/s':>9} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    medians = {}
    for scenario in SCENARIOS:
        for name in run.names:
            m = medians[(scenario, name)] = {key: median(run.results.pick(key, scenario=scenario, server=name)) for key in FIGURES}
            say(f"{scenario:<8} {name:<10} {m['rps']:>9.0f} {m['mb_per_s']:>8.1f} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f}")
    say("ratios streamgate ÷ nginx (req/s and MB/s: higher is better; latency: lower is better)")
    ratios = {}
    for scenario in SCENARIOS:
        sg, ng = medians[(scenario, "streamgate")], medians[(scenario, "nginx")]
        r = ratios[scenario] = {key: ratio(sg[key], ng[key]) for key in FIGURES}
        say(f"  {scenario:<5} req/s {r['rps']:.3f}  MB/s {r['mb_per_s']:.3f}  p50 {r['p50_ms']:.3f}  p99 {r['p99_ms']:.3f}")
    return medians, ratios


def cpu_medians(run):
    """{scenario: {server: median CPU µs a request, or None}} for hot and zipf, printed."""
    say("server CPU a request (user + system, whole process; medians of the rounds), µs:")
    cpu = {}
    for scenario in ("hot", "zipf"):
        c = cpu[scenario] = {name: run.results.median("cpu_us_per_request", scenario=scenario, server=name) for name in run.names}
        if None not in c.values():
            say(f"  {scenario:<5} streamgate {c['streamgate']:.0f}  nginx {c['nginx']:.0f}  ratio {ratio(c['streamgate'], c['nginx']):.2f}")
    return cpu


def hit_rate(run, tally):
    """StreamGate's zipf L1 hit rate over the measured rounds, printed; None (an error) without one."""
    if tally.counters_missing:
        error("/metrics has no streamgate_origin_cache_total{level=\"l1\",result=\"hit\"|\"miss\"} counters; "
              "the zipf hit rate is not reported")
    elif tally.hits + tally.misses == 0:
        error("the L1 counters did not move during the zipf rounds")
    else:
        say(f"zipf L1 hit rate after warm-up: {tally.hit_rate:.4f} ({tally.hits:.0f} hits, {tally.misses:.0f} misses over the "
            f"measured rounds; during warm-up {tally.warm:.3f}; best possible for {run.args.l1_bytes / 2**20:.0f} MiB "
            f"≈ {run.asset.oracle:.3f})" if tally.warm is not None else f"zipf L1 hit rate after warm-up: {tally.hit_rate:.4f}")
    if tally.reads:
        say(f"zipf store reads by StreamGate over the measured rounds: {tally.reads.get('store_reads', 0):.0f} "
            f"(of which read-ahead: {tally.reads.get('warmed', 0):.0f}) for {tally.misses:.0f} L1 misses")
    return tally.hit_rate


def report(run, tallies, finals, peaks, cold_method, started):
    """Prints the report and the summary line; returns the exit status (3 without a zipf hit rate).

    finals: {name: the StreamGate server's last /metrics}; peaks: {name: {phase: peak VmRSS MiB}}."""
    args, asset, results = run.args, run.asset, run.results
    medians, ratios = medians_and_ratios(run)
    cpu_medians(run)
    zipf_hit = hit_rate(run, tallies["streamgate"])
    sg_peak, ng_peak = peaks["streamgate"], peaks["nginx"]
    rss_mib = max(sg_peak.values())
    say("memory (peak VmRSS sampled every 100 ms under load, MiB): "
        + "  ".join(f"{phase} streamgate {sg_peak[phase]:.0f} / nginx {ng_peak[phase]:.0f}" for phase in sg_peak)
        + "  (nginx: master + workers)")
    say(f"streamgate VmHWM per process (MiB): {', '.join(f'{value:.0f}' for value in run.hwm['streamgate'])}")
    final = finals["streamgate"]
    statuses = final.by("streamgate_origin_requests_total", "status", route="segment")
    rate_limited = final.sum("streamgate_origin_rate_limited_total")
    say(f"streamgate segment responses by status (last process): "
        f"{', '.join(f'{k}: {v:.0f}' for k, v in sorted(statuses.items())) or 'none counted'}"
        + (f"; rate limited {rate_limited:.0f}" if rate_limited else ""))
    for problem in run.problems:
        warn(problem)
    elapsed = time.time() - started
    total = time.time() - (args.started or started)
    say(f"measured in {elapsed:.0f} s, {total:.0f} s in all; every run and this summary appended to {results.path}")

    results.summary(
        {"hot_rps_ratio": f"{ratios['hot']['rps']:.3f}", "hot_p99_ratio": f"{ratios['hot']['p99_ms']:.3f}",
         "zipf_hit": f"{zipf_hit:.3f}" if zipf_hit is not None else "NA", "rss_mib": f"{rss_mib:.0f}"},
        asset_key=args.asset_key, segments=len(asset.segments), asset_bytes=asset.total_bytes,
        threads=args.threads, connections=args.connections, rounds=args.rounds, cold_rounds=args.cold_rounds,
        duration=args.duration, warmup=args.warmup, zipf_s=args.zipf_s, l1_bytes=args.l1_bytes,
        medians={f"{s}/{n}": v for (s, n), v in medians.items()}, ratios=ratios,
        zipf_hit=zipf_hit, zipf_hit_warmup=tallies["streamgate"].warm, zipf_oracle=asset.oracle,
        rss_peak_mib=sg_peak, nginx_rss_peak_mib=ng_peak, vmhwm_mib=run.hwm["streamgate"],
        page_cache=cold_method, problems=run.problems, seconds=round(elapsed, 1),
        seconds_total=round(total, 1), streamgate=args.streamgate,
        commit=os.environ.get("BENCH_ORIGIN_COMMIT", ""))
    return 3 if zipf_hit is None else 0
