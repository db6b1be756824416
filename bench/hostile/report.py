"""bench/hostile/report.py: from what the run saw to the report.

Every file's outcome (rejected at upload, or its job's end state, error and attempts), the crashes,
the limits, the safety checks, the failure reasons grouped, the tables, WORK/results/<time>.json
and .md, and the `summary key=value …` line. report() returns the exit status: 1 when a check fails.
"""
import collections
import datetime
import json
import re
from dataclasses import dataclass
from pathlib import Path

from follow import LIMIT_GRACE_S, Follower
from stack import Canary, Health, Stack, log


# ------------------------------------------------------------------------------------------------
# Reasons


def reason_text(error, source):
    """A failure reason without its file name, for grouping."""
    if not error:
        return ""
    text = error
    if source and source in text:
        text = text.replace(source + ": ", "").replace(source, "FILE")
    text = re.sub(r"/[^\s:]*\.sealed", "FILE", text)
    return text


def category(reason):
    text = re.sub(r"0x[0-9a-fA-F]+", "N", reason)
    text = re.sub(r"(?<![A-Za-z0-9_])-?\d+(\.\d+)?(?![A-Za-z0-9_])", "N", text)
    text = re.sub(r"'[^']*'", "'…'", text)
    return text[:160]


def clear_reason(error, source):
    """One line, naming the file, then why."""
    if not error or "\n" in error or not source:
        return False
    # A dead letter starts "gave up after N attempts: " and then says what the last attempt said.
    body = re.sub(r"^gave up after \d+ attempts: ", "", error)
    return body.startswith(source + ": ") and len(body) > len(source) + 4


@dataclass
class Observed:
    """What drive.py saw of the run, handed to report()."""
    manifest: dict
    entries: list  # the manifest's entries (those --only kept), each with its "upload" answer
    kinds: list
    run: Path  # WORK/run: the stack's logs and store
    stack: Stack
    canary: Canary
    health: Health
    follower: Follower
    records: dict  # job id -> GET /v1/jobs/{id}
    over_limit: dict  # job id -> how long its attempt had run when it was seen past the limit
    stalled: bool
    wall: float  # s from the first upload to the last job's end
    still_up: dict  # process name -> still running at the end
    workers_output: str  # `streamgate workers` at the end
    queue_output: str  # `streamgate queue` at the end
    farm_status: dict  # {sg}:farm:default:desired:status


def report(args, work, seen):
    """Prints the report, writes the results files; returns the exit status."""
    manifest, entries, kinds, run, stack, canary, health, follower = (
        seen.manifest, seen.entries, seen.kinds, seen.run, seen.stack, seen.canary, seen.health, seen.follower)
    records, over_limit, stalled, wall, still_up = seen.records, seen.over_limit, seen.stalled, seen.wall, seen.still_up
    workers_output, queue_output, farm_status = seen.workers_output, seen.queue_output, seen.farm_status

    # --- Outcomes ------------------------------------------------------------------------------
    uploads_dir = stack.store / "uploads"
    for entry in entries:
        upload = entry.get("upload", {"status": 0, "answer": {"error": "not uploaded"}})
        answer = upload["answer"]
        job = answer.get("job_id")
        entry["job"] = job
        entry["source"] = str(uploads_dir / ("%s.sealed" % answer["upload_id"])) if answer.get("upload_id") else None
        if upload["status"] != 202 or not job:
            entry["outcome"] = "rejected"
            entry["reason"] = "HTTP %d: %s" % (upload["status"], answer.get("error", ""))
            entry["attempts"] = []
            continue
        record = records.get(job, {})
        final = follower.final.get(job)
        state = record.get("state") or (final or {}).get("state") or "unfinished"
        entry["outcome"] = state if state in Follower.TERMINAL else "unfinished"
        entry["error"] = record.get("error") or (final or {}).get("error")
        entry["reason"] = reason_text(entry["error"], entry["source"])
        entry["attempts"] = follower.attempts.get(job, [])
        entry["attempt_errors"] = [a["error"] for a in entry["attempts"] if a["error"]]
        durations = [a["end"] - a["start"] for a in entry["attempts"] if a["end"] is not None]
        entry["longest_attempt_s"] = max(durations) if durations else None
        entry["over_limit"] = job in over_limit

    outcome_names = ["succeeded", "failed", "dead", "cancelled", "rejected", "unfinished"]
    totals = collections.Counter(e["outcome"] for e in entries)
    by_kind = {kind: collections.Counter(e["outcome"] for e in entries if e["kind"] == kind) for kind in kinds}

    # Crashes: transcodes that ended by a signal the worker did not send (its kills are timeouts,
    # cancels and releases, recorded as such), and worker processes the farm had to start again.
    signal_pattern = re.compile(r"transcode killed by signal (\d+)")
    crashed_transcodes = []
    for entry in entries:
        for attempt in entry.get("attempts", []):
            match = signal_pattern.search(attempt.get("error") or "")
            if match:
                crashed_transcodes.append((entry["file"], attempt["error"]))
    worker_logs = "".join(p.read_text(errors="replace") for p in sorted((run / "logs").glob("*.log")))
    crash_lines = [line for line in worker_logs.splitlines() if "transcode crashed" in line]
    farm_log = (run / "farm.log").read_text(errors="replace") if (run / "farm.log").exists() else ""
    worker_deaths = len(re.findall(r"worker died", farm_log))
    workers_started = len(re.findall(r"started a worker", farm_log))
    restarts = int(farm_status.get("restarts", "0") or 0)
    crashed_workers = max(worker_deaths, restarts, workers_started - args.workers) + len(crashed_transcodes)

    # Limits.
    timeouts = sum(1 for e in entries for a in e.get("attempts", []) if "timed out after" in (a.get("error") or ""))
    attempts_all = [(a["end"] - a["start"], e) for e in entries for a in e.get("attempts", []) if a["end"] is not None]
    longest_attempt, longest_entry = max(attempts_all, key=lambda t: t[0]) if attempts_all else (0, None)
    past_limit = [e["file"] for e in entries
                  if e.get("over_limit") or (e.get("longest_attempt_s") or 0) > args.job_timeout + LIMIT_GRACE_S]
    never_ended = [e["file"] for e in entries if e["outcome"] == "unfinished"]

    # Safety of named files and caps.
    escaped = [e["file"] for e in entries if e.get("names_others") and e["outcome"] == "succeeded"]
    not_accepted_misses = [e for e in entries if e["expect"] == "not-accepted"
                           and not (e["outcome"] == "failed" and "not accepted" in (e.get("error") or ""))]
    fail_misses = [e for e in entries if e["expect"] == "fail" and e["outcome"] == "succeeded"]
    control_misses = [e for e in entries if e["expect"] == "succeed" and e["outcome"] != "succeeded"]

    # Failure reasons: one line naming the file, and why.
    failures = [e for e in entries if e["outcome"] in ("failed", "dead")]
    unclear = [e for e in failures if not clear_reason(e.get("error"), e.get("source"))]
    categories = collections.defaultdict(list)
    for e in failures:
        categories[(e["outcome"], category(e["reason"]))].append(e)

    # Left behind: sealed uploads, staging folders, assets published by jobs that did not succeed.
    left_uploads = sorted(p.name for p in uploads_dir.glob("*")) if uploads_dir.exists() else []
    staging = stack.store / "staging"
    left_staging = sorted(p.name for p in staging.glob("*")) if staging.exists() else []
    assets = stack.store / "assets"
    published = {p.name for p in assets.iterdir()} if assets.exists() else set()
    succeeded_assets = {e["upload"]["asset"] for e in entries if e["outcome"] == "succeeded"}
    published_wrongly = sorted(published - succeeded_assets)

    # --- Report --------------------------------------------------------------------------------
    rate = len(entries) * 60 / wall
    out = []
    say = out.append
    say("bench/hostile: %d files in %d kinds (seed %d, digest %s), commit %s, %d workers, --job-timeout %g s, %s"
        % (len(entries), len(kinds), args.seed, manifest["digest"], args.commit, args.workers, args.job_timeout, manifest["ffmpeg"]))
    say("wall %.1f s from the first upload to the last job's end: %.1f files/minute" % (wall, rate))
    say("outcomes: " + "  ".join("%s %d" % (name, totals.get(name, 0)) for name in outcome_names))
    if longest_entry is not None:
        say("longest attempt: %.1f s (%s, %s); attempts timed out: %d" % (longest_attempt, longest_entry["file"], longest_entry["outcome"], timeouts))
    say("")
    header = "| kind | files | succeeded | failed | dead | rejected | other | expected | longest s |"
    table = [header, "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for kind in kinds:
        group = [e for e in entries if e["kind"] == kind]
        counts = by_kind[kind]
        other = sum(v for k, v in counts.items() if k not in ("succeeded", "failed", "dead", "rejected"))
        expects = sorted({e["expect"] for e in group})
        longest = max([e.get("longest_attempt_s") or 0 for e in group])
        table.append("| %s | %d | %d | %d | %d | %d | %d | %s | %.1f |" % (
            kind, len(group), counts.get("succeeded", 0), counts.get("failed", 0), counts.get("dead", 0), counts.get("rejected", 0), other,
            "/".join(expects), longest))
    table.append("| **all** | %d | %d | %d | %d | %d | %d | | %.1f |" % (
        len(entries), totals.get("succeeded", 0), totals.get("failed", 0), totals.get("dead", 0), totals.get("rejected", 0),
        totals.get("cancelled", 0) + totals.get("unfinished", 0), longest_attempt))
    out.extend(table)
    say("")
    say("failure reasons (%d categories; the file's name replaced by FILE, numbers by N):" % len(categories))
    reasons_table = ["| jobs | outcome | reason | kinds |", "|---:|---|---|---|"]
    for (outcome, text), group in sorted(categories.items(), key=lambda kv: -len(kv[1])):
        kinds_of = collections.Counter(e["kind"] for e in group)
        reasons_table.append("| %d | %s | %s | %s |" % (len(group), outcome, text.replace("|", "\\|"),
                                                       ", ".join("%s %d" % kv for kv in kinds_of.most_common(4))
                                                       + (" …" if len(kinds_of) > 4 else "")))
    out.extend(reasons_table)
    rejected = [e for e in entries if e["outcome"] == "rejected"]
    if rejected:
        say("")
        say("refused at upload: " + "; ".join(sorted({"%s (%s)" % (e["reason"], e["kind"]) for e in rejected})))
    say("")
    checks = []

    def check(ok, text):
        checks.append(ok)
        say("%s %s" % ("ok  " if ok else "FAIL", text))

    say("safety:")
    check(canary.count() == 0, "canary connections: %d (tcp %d, udp %d)" % (canary.count(), canary.count("tcp"), canary.count("udp")))
    check(not escaped, "crafted files that name other files or URLs and published (a named file was read): %d%s"
          % (len(escaped), (" " + ", ".join(escaped)) if escaped else ""))
    crafted = [e for e in entries if e["expect"] == "not-accepted"]
    check(not not_accepted_misses, "playlists, manifests, lists, SDP and images refused as \"not accepted\": %d of %d%s" % (
        len(crafted) - len(not_accepted_misses), len(crafted),
        "".join("\n       %s: %s %s" % (e["file"], e["outcome"], e.get("error") or e.get("reason")) for e in not_accepted_misses)))
    capped = [e for e in entries if e["expect"] == "fail"]
    check(not fail_misses, "files over a cap or naming a file through a real container that did not publish: %d of %d%s" % (
        len(capped) - len(fail_misses), len(capped), "".join("\n       %s published" % e["file"] for e in fail_misses)))
    check(crashed_workers == 0, "crashed workers: %d (worker processes died %d, farm restarts %d, workers started %d for %d; "
          "transcodes killed by a signal the worker did not send %d)" % (crashed_workers, worker_deaths, restarts, workers_started, args.workers,
                                                                         len(crashed_transcodes))
          + "".join("\n       %s: %s" % c for c in crashed_transcodes[:20]))
    check(not past_limit and not stalled, "jobs past their limit (%g s + %d s): %d; stalled: %s" % (
        args.job_timeout, LIMIT_GRACE_S, len(past_limit), "yes" if stalled else "no") + "".join("\n       " + f for f in past_limit[:20]))
    check(not never_ended, "jobs that never ended: %d" % len(never_ended) + "".join("\n       " + f for f in never_ended[:20]))
    check(not health.http_failures and not health.redis_failures and all(still_up.values()) and not health.process_exits,
          "server and redis up throughout: %d checks, /healthz failures %d, redis PING failures %d, exited %s"
          % (health.checks, len(health.http_failures), len(health.redis_failures),
             ", ".join("%s (%s)" % (k, v[1]) for k, v in health.process_exits.items()) or "none"))
    check(not left_uploads and not left_staging and not published_wrongly,
          "left behind: sealed uploads %d, staging folders %d, assets published without a succeeded job %d"
          % (len(left_uploads), len(left_staging), len(published_wrongly)))
    check(not control_misses, "valid control clips published: %d of %d%s" % (
        len([e for e in entries if e["expect"] == "succeed"]) - len(control_misses), len([e for e in entries if e["expect"] == "succeed"]),
        "".join("\n       %s: %s %s" % (e["file"], e["outcome"], e.get("error")) for e in control_misses)))
    say("quality:")
    say("%s failure reasons that are one line naming the file and why: %d of %d%s" % (
        "ok  " if not unclear else "WARN", len(failures) - len(unclear), len(failures),
        "".join("\n       %s: %r" % (e["file"], e.get("error")) for e in unclear[:20])))
    say("")
    say("workers at the end (streamgate workers):")
    out.extend("  " + line for line in workers_output.rstrip().splitlines())
    say("queue at the end (streamgate queue):")
    out.extend("  " + line for line in queue_output.rstrip().splitlines())
    if crash_lines:
        say("worker log lines about crashed transcodes: %d (first: %s)" % (len(crash_lines), crash_lines[0][:300]))

    summary = ("summary files=%d per_minute=%.1f failed=%d dead=%d succeeded=%d crashed_workers=%d canary_connections=%d escaped=%d "
               "rejected=%d timeouts=%d longest_s=%.1f unclear_reasons=%d checks_failed=%d" % (
                   len(entries), rate, totals.get("failed", 0), totals.get("dead", 0), totals.get("succeeded", 0), crashed_workers,
                   canary.count(), len(escaped), totals.get("rejected", 0), timeouts, longest_attempt, len(unclear),
                   sum(1 for ok in checks if not ok)))
    out.append("")
    out.append(summary)
    print("\n".join(out), flush=True)

    results = work / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    (results / (stamp + ".json")).write_text(json.dumps({
        "commit": args.commit, "seed": args.seed, "digest": manifest["digest"], "workers": args.workers, "job_timeout": args.job_timeout,
        "wall_s": wall, "per_minute": rate, "totals": totals, "canary": canary.hits, "crashed_transcodes": crashed_transcodes,
        "summary": summary, "files": [{k: v for k, v in e.items() if k != "upload"} | {"upload_status": e.get("upload", {}).get("status")}
                                      for e in entries],
    }, indent=1, default=str) + "\n")
    (results / (stamp + ".md")).write_text("\n".join(table) + "\n\n" + "\n".join(reasons_table) + "\n\n" + summary + "\n")
    log("results in %s/%s.{json,md}; logs in %s" % (results, stamp, run))
    return 0 if all(checks) else 1
