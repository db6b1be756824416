"""bench/origin/report.py: medians of the rounds, the ratios, memory, and the summary line.

Ratios are StreamGate ÷ nginx, and in baseline mode also StreamGate ÷ baseline (the new build ÷ the
old one). The summary line is `summary hot_rps_ratio=… hot_p99_ratio=… zipf_hit=… rss_mib=…`, with
`hot_rps_vs_baseline=… hot_p99_vs_baseline=… cpu_per_req_vs_baseline=… zipf_rps_vs_baseline=…
zipf_cpu_per_req_vs_baseline=…` after them in baseline mode; its row in results.jsonl holds the
medians, the ratios and the run's settings besides.
"""

import os
import sys
import time

from benchlib import median, ratio, say, warn
from scenarios import FIGURES, SCENARIOS


def error(text):
    print(f"bench/origin: error: {text}", file=sys.stderr, flush=True)


def ratios_of(medians, top, bottom, heading):
    """{scenario: {figure: top ÷ bottom}} of the medians, printed under `heading`."""
    say(heading)
    ratios = {}
    for scenario in SCENARIOS:
        a, b = medians[(scenario, top)], medians[(scenario, bottom)]
        r = ratios[scenario] = {key: ratio(a[key], b[key]) for key in FIGURES}
        say(f"  {scenario:<5} req/s {r['rps']:.3f}  MB/s {r['mb_per_s']:.3f}  p50 {r['p50_ms']:.3f}  p99 {r['p99_ms']:.3f}")
    return ratios


def medians_table(run):
    """{(scenario, server): {figure: median}}, printed."""
    say("")
    say("medians (MB = 10^6 bytes, wrk's count: headers and bodies)")
    say(f"{'scenario':<8} {'server':<10} {'req/s':>9} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    medians = {}
    for scenario in SCENARIOS:
        for name in run.names:
            m = medians[(scenario, name)] = {key: median(run.results.pick(key, scenario=scenario, server=name)) for key in FIGURES}
            say(f"{scenario:<8} {name:<10} {m['rps']:>9.0f} {m['mb_per_s']:>8.1f} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f}")
    return medians


def cpu_medians(run):
    """{scenario: {server: median CPU µs a request, or None}} for hot and zipf, printed."""
    say("server CPU a request (user + system, whole process; medians of the rounds), µs:")
    cpu = {}
    for scenario in ("hot", "zipf"):
        c = cpu[scenario] = {name: run.results.median("cpu_us_per_request", scenario=scenario, server=name) for name in run.names}
        if None not in c.values():
            say(f"  {scenario:<5} streamgate {c['streamgate']:.0f}  nginx {c['nginx']:.0f}  ratio {ratio(c['streamgate'], c['nginx']):.2f}"
                + (f"  baseline {c['baseline']:.0f}  streamgate ÷ baseline {ratio(c['streamgate'], c['baseline']):.2f}"
                   if "baseline" in c else ""))
    return cpu


def hit_rate(run, name, tally):
    """A StreamGate server's zipf L1 hit rate over the measured rounds, printed; None without one
    (an error for the new build, a warning for the baseline, which may count differently)."""
    label = "" if name == "streamgate" else f"{name} "
    complain = error if name == "streamgate" else warn
    if tally.counters_missing:
        complain(f"{label}/metrics has no streamgate_origin_cache_total{{level=\"l1\",result=\"hit\"|\"miss\"}} counters; "
                 f"the {label}zipf hit rate is not reported")
    elif tally.hits + tally.misses == 0:
        complain(f"the {label}L1 counters did not move during the zipf rounds")
    else:
        say(f"{label}zipf L1 hit rate after warm-up: {tally.hit_rate:.4f} ({tally.hits:.0f} hits, {tally.misses:.0f} misses over the "
            f"measured rounds; during warm-up {tally.warm:.3f}; best possible for {run.args.l1_bytes / 2**20:.0f} MiB "
            f"≈ {run.asset.oracle:.3f})" if tally.warm is not None else f"{label}zipf L1 hit rate after warm-up: {tally.hit_rate:.4f}")
    if tally.reads:
        who = "StreamGate" if name == "streamgate" else name
        say(f"zipf store reads by {who} over the measured rounds: {tally.reads.get('store_reads', 0):.0f} "
            f"(of which read-ahead: {tally.reads.get('warmed', 0):.0f}) for {tally.misses:.0f} L1 misses")
    return tally.hit_rate


def upstream_gets(run):
    """bench/origin-s3: {scenario: {server: S3 GETs per 10,000 requests}} (medians of the rounds),
    printed; None for bench/origin, which has no bucket."""
    if not run.args.s3_store:
        return None
    say("S3 GETs per 10,000 requests (the S3 server's own count; medians of the rounds):")
    table = {}
    for scenario in SCENARIOS:
        rates = table[scenario] = {}
        for name in run.names:
            rows = [row for row in run.results.rows if row.get("scenario") == scenario and row.get("server") == name
                    and row.get("s3_gets") is not None and row.get("requests")]
            rates[name] = median([row["s3_gets"] * 10_000 / row["requests"] for row in rows]) if rows else None
        say(f"  {scenario:<5} " + "  ".join(f"{name} {formatted(rate, 0)}" for name, rate in rates.items()))
    return table


def formatted(value, digits=3):
    return "NA" if value is None else f"{value:.{digits}f}"


def report(run, tallies, finals, peaks, cold_method, started):
    """Prints the report and the summary line; returns the exit status (3 without a zipf hit rate).

    finals: {name: the StreamGate server's last /metrics}; peaks: {name: {phase: peak VmRSS MiB}}."""
    args, asset, results = run.args, run.asset, run.results
    baseline = "baseline" in run.names
    medians = medians_table(run)
    ratios = ratios_of(medians, "streamgate", "nginx",
                       "ratios streamgate ÷ nginx (req/s and MB/s: higher is better; latency: lower is better)")
    vs_baseline = ratios_of(medians, "streamgate", "baseline",
                            "ratios streamgate ÷ baseline (the new build ÷ the old one; req/s and MB/s: higher is better; "
                            "latency: lower is better)") if baseline else None
    cpu = cpu_medians(run)
    gets = upstream_gets(run)
    zipf_hit = hit_rate(run, "streamgate", tallies["streamgate"])
    baseline_hit = hit_rate(run, "baseline", tallies["baseline"]) if baseline else None
    sg_peak, ng_peak = peaks["streamgate"], peaks["nginx"]
    rss_mib = max(sg_peak.values())
    say("memory (peak VmRSS sampled every 100 ms under load, MiB): "
        + "  ".join(f"{phase} streamgate {sg_peak[phase]:.0f}"
                    + (f" / baseline {peaks['baseline'][phase]:.0f}" if baseline else "")
                    + f" / nginx {ng_peak[phase]:.0f}" for phase in sg_peak)
        + "  (nginx: master + workers)")
    for name, final in finals.items():
        say(f"{name} VmHWM per process (MiB): {', '.join(f'{value:.0f}' for value in run.hwm[name])}")
        statuses = final.by("streamgate_origin_requests_total", "status", route="segment")
        rate_limited = final.sum("streamgate_origin_rate_limited_total")
        say(f"{name} segment responses by status (last process): "
            f"{', '.join(f'{k}: {v:.0f}' for k, v in sorted(statuses.items())) or 'none counted'}"
            + (f"; rate limited {rate_limited:.0f}" if rate_limited else ""))
    for problem in run.problems:
        warn(problem)
    elapsed = time.time() - started
    total = time.time() - (args.started or started)
    say(f"measured in {elapsed:.0f} s, {total:.0f} s in all; every run and this summary appended to {results.path}")

    line = {"hot_rps_ratio": f"{ratios['hot']['rps']:.3f}", "hot_p99_ratio": f"{ratios['hot']['p99_ms']:.3f}",
            "zipf_hit": formatted(zipf_hit), "rss_mib": f"{rss_mib:.0f}"}
    more = {}
    if gets is not None:
        line.update(cold_p99_ratio=f"{ratios['cold']['p99_ms']:.3f}", zipf_rps_ratio=f"{ratios['zipf']['rps']:.3f}",
                    cold_gets_per_10k=formatted(gets["cold"]["streamgate"], 0), nginx_cold_gets_per_10k=formatted(gets["cold"]["nginx"], 0),
                    zipf_gets_per_10k=formatted(gets["zipf"]["streamgate"], 0), nginx_zipf_gets_per_10k=formatted(gets["zipf"]["nginx"], 0))
        more["s3_gets_per_10k"] = gets
    if baseline:
        cpu_vs = {scenario: ratio(c["streamgate"], c["baseline"]) if None not in (c["streamgate"], c["baseline"]) else None
                  for scenario, c in cpu.items()}
        line.update(hot_rps_vs_baseline=f"{vs_baseline['hot']['rps']:.3f}", hot_p99_vs_baseline=f"{vs_baseline['hot']['p99_ms']:.3f}",
                    cpu_per_req_vs_baseline=formatted(cpu_vs["hot"]), zipf_rps_vs_baseline=f"{vs_baseline['zipf']['rps']:.3f}",
                    zipf_cpu_per_req_vs_baseline=formatted(cpu_vs["zipf"]))
        more = dict(baseline=args.baseline, baseline_serve_args=args.baseline_serve_args,
                    baseline_commit=os.environ.get("BENCH_ORIGIN_BASELINE_COMMIT", ""), ratios_vs_baseline=vs_baseline,
                    cpu_us_per_request=cpu, cpu_vs_baseline=cpu_vs, baseline_zipf_hit=baseline_hit,
                    baseline_zipf_hit_warmup=tallies["baseline"].warm, baseline_rss_peak_mib=peaks["baseline"],
                    baseline_vmhwm_mib=run.hwm["baseline"])
    results.summary(
        line,
        asset_key=args.asset_key, segments=len(asset.segments), asset_bytes=asset.total_bytes,
        threads=args.threads, connections=args.connections, rounds=args.rounds, cold_rounds=args.cold_rounds,
        duration=args.duration, warmup=args.warmup, zipf_s=args.zipf_s, l1_bytes=args.l1_bytes,
        medians={f"{s}/{n}": v for (s, n), v in medians.items()}, ratios=ratios,
        zipf_hit=zipf_hit, zipf_hit_warmup=tallies["streamgate"].warm, zipf_oracle=asset.oracle,
        rss_peak_mib=sg_peak, nginx_rss_peak_mib=ng_peak, vmhwm_mib=run.hwm["streamgate"],
        page_cache=cold_method, problems=run.problems, seconds=round(elapsed, 1),
        seconds_total=round(total, 1), streamgate=args.streamgate,
        commit=os.environ.get("BENCH_ORIGIN_COMMIT", ""), **more)
    return 3 if zipf_hit is None else 0
