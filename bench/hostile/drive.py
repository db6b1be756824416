#!/usr/bin/env python3
"""bench/hostile/drive.py: pushes the hostile files through a real StreamGate farm and reports.

Started by bench/hostile/run.sh (which checks the tools and builds the binary). It

1. opens the canary listener (TCP and UDP on one free loopback port), then runs generate.py with
   that port and the canary folder (outside the store);
2. starts a stack of its own in WORK/run/ (emptied first): redis-server on a Unix socket,
   `streamgate serve` with an API key, and `streamgate farm --workers WORKERS --job-timeout
   JOB_TIMEOUT`;
3. uploads every file through the API (`POST /v1/uploads?profile=fast`, the sealed-upload path),
   follows the queue's event stream until every job has ended (or nothing has moved for --stall
   seconds), checking /healthz and Redis every second;
4. reports outcomes overall and by kind, failure reasons, the longest attempt, and the safety
   properties, writes WORK/results/<time>.json (every file's outcome) and WORK/results/<time>.md
   (the tables, for BENCHMARKS.md), and ends with one `summary key=value …` line.

Exits 1 when a safety property fails: a canary connection, a crafted file's job publishing, a
crafted playlist/manifest/list not refused as "not accepted", a cap not holding, a worker or
transcode crashing (a signal the worker did not send), a job past its time limit or never ending,
the server or Redis going down, uploads or staging left behind, or a control clip failing.

The pieces are beside it: stack.py (the Redis client, the canary, the stack, the health checks),
follow.py (the uploads, the events stream followed) and report.py (outcomes, checks, the report).
"""
import argparse
import http.client
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from follow import LIMIT_GRACE_S, Follower, upload_all
from report import Observed, report
from stack import Canary, Health, Redis, Stack, log


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--streamgate", required=True)
    parser.add_argument("--pids", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--job-timeout", type=float, default=120)
    parser.add_argument("--uploads", type=int, default=4, help="uploads at once")
    parser.add_argument("--stall", type=float, default=0, help="give up when no job event for this long (default: 3 × job timeout)")
    parser.add_argument("--farm-args", default="")
    parser.add_argument("--serve-args", default="")
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--only", default="", help="only kinds matching this regular expression")
    args = parser.parse_args()
    stall = args.stall or 3 * args.job_timeout

    work = Path(args.work)
    canary = Canary()
    canary_dir = work / "canary"
    log("canary listener on 127.0.0.1:%d (tcp and udp), canary files in %s" % (canary.port, canary_dir))
    generated = subprocess.run([sys.executable, str(Path(args.root) / "bench/hostile/generate.py"), "--out", str(work), "--seed", str(args.seed),
                                "--canary-dir", str(canary_dir), "--canary-port", str(canary.port)], stdout=subprocess.PIPE, text=True)
    if generated.returncode != 0:
        raise SystemExit("bench/hostile: generate.py failed")
    log(generated.stdout.strip())
    files_dir = work / "files"
    manifest = json.loads((files_dir / "manifest.json").read_text())
    entries = manifest["files"]
    if args.only:
        entries = [e for e in entries if re.search(args.only, e["kind"])]
    kinds = sorted({e["kind"] for e in entries})

    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    (run / "logs").mkdir(parents=True)
    stack = Stack(args, run)
    log("starting redis-server, streamgate serve (port %d) and streamgate farm --workers %d --job-timeout %g in %s"
        % (stack.port, args.workers, args.job_timeout, run))
    stack.start()
    health = Health(stack)
    follower = Follower(stack.socket)
    try:
        started = time.time()
        threads = upload_all(stack, entries, files_dir, args.uploads)
        last_print = 0
        over_limit = {}
        stalled = False
        while True:
            try:
                follower.poll()
            except (OSError, ConnectionError, RuntimeError) as error:
                # The health checks record Redis being away; keep trying until the stall limit.
                follower.redis.close()
                log("cannot read the events stream: %s" % error)
            uploading = any(t.is_alive() for t in threads)
            jobs = {e["upload"]["answer"].get("job_id") for e in entries if e.get("upload", {}).get("status") == 202}
            jobs.discard(None)
            done = len([j for j in jobs if j in follower.final])
            now = time.time()
            for job, attempt in follower.open_attempts():
                if now - attempt["start"] > args.job_timeout + LIMIT_GRACE_S and job not in over_limit:
                    over_limit[job] = now - attempt["start"]
                    log("job %s has run %.0f s, past its limit of %g s" % (job, now - attempt["start"], args.job_timeout))
            if now - last_print >= 5:
                last_print = now
                running = len(follower.open_attempts())
                uploaded = sum(1 for e in entries if "upload" in e)
                log("%4.0f s: uploaded %d/%d, ended %d/%d, running %d" % (now - started, uploaded, len(entries), done, len(jobs), running))
            if not uploading and done >= len(jobs):
                break
            if not uploading and now - follower.last_event > stall:
                stalled = True
                log("no job event for %.0f s: giving up on %d jobs that have not ended" % (stall, len(jobs) - done))
                break
            time.sleep(0.5)
        ended = follower.last_end or time.time()
        wall = max(ended - started, 0.001)

        # Every job's record, through the API.
        records = {}
        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
        for entry in entries:
            job = entry.get("upload", {}).get("answer", {}).get("job_id")
            if not job:
                continue
            conn.request("GET", "/v1/jobs/" + job, headers={"Authorization": "Bearer " + stack.api_key})
            response = conn.getresponse()
            body = response.read()
            if response.status == 200:
                records[job] = json.loads(body)
        conn.close()
        workers_output = subprocess.run([args.streamgate, "workers"], env=stack.env, capture_output=True, text=True).stdout
        queue_output = subprocess.run([args.streamgate, "queue"], env=stack.env, capture_output=True, text=True).stdout
        redis = Redis(stack.socket)
        farm_status = redis.call("HGETALL", "{sg}:farm:default:desired:status") or []
        farm_status = dict(zip(farm_status[0::2], farm_status[1::2]))
        redis.close()
        health.stop()
        still_up = {name: stack.alive(name) for name in ("redis", "serve", "farm")}
    finally:
        health.stop()
        stack.stop()
        canary.stop()

    sys.exit(report(args, work, Observed(
        manifest=manifest, entries=entries, kinds=kinds, run=run, stack=stack, canary=canary, health=health,
        follower=follower, records=records, over_limit=over_limit, stalled=stalled, wall=wall, still_up=still_up,
        workers_output=workers_output, queue_output=queue_output, farm_status=farm_status)))


if __name__ == "__main__":
    main()
