"""bench/benchlib: the plumbing the benches' Python drivers share (bench/origin, bench/gate).

A driver (bench/NAME/bench.py, started by bench/NAME/run.sh from the repository root) puts bench/
on sys.path, imports what it needs from here and hands its main() to run(). Standard library only.

driver.py, running the driver and what it starts:
  run(name, main)       runs main(): SIGTERM ends it like Ctrl-C, every Process still running is
                        stopped however it ends, a Failure prints "NAME: reason" and exits 1, an
                        interrupt exits 130; otherwise main's return value is the exit status
  say, warn, Failure    a line on standard output; "NAME: warning: …" on standard error; a stop
  Process               a child whose pid goes to the run's pids file (run.sh's trap stops what a
                        dead driver left); start_http() runs it on a free port until /healthz is 200
  RedisServer, Redis    redis-server on a Unix socket, ready when it answers PING; a minimal client
  HTTP, http_once       a keep-alive client to 127.0.0.1; one request
  log_lines             a log's lines holding given words (errors, warnings)

measure.py, measuring and keeping the figures:
  Wrk                   wrk with a list-reading Lua script (cycle or once); figures from its done() line
  cpu_seconds, with_cpu, cpu_us_per_request, with_children, status_kib, RssSampler
                        CPU time and memory of processes from /proc
  drop_page_cache       empties the page cache before a cold pass (drop_caches, else fadvise per file)
  Metrics, moved        a /metrics page (Prometheus text) summed by name and labels; a counter's move
  median, ratio         of the rounds; StreamGate ÷ anchor (NaN without a denominator)
  alternate             the sides' order in a round: reversed every other round
  Results               WORK/results.jsonl: a JSON line per load run (and medians of them), then the
                        summary row and the `summary key=value …` line
"""

from .driver import HTTP, ROOT, Failure, Process, Redis, RedisServer, http_once, log_lines, run, say, warn
from .measure import (Metrics, Results, RssSampler, Wrk, alternate, cpu_seconds, cpu_us_per_request, drop_page_cache,
                      median, moved, ratio, status_kib, with_children, with_cpu)

__all__ = ["HTTP", "ROOT", "Failure", "Process", "Redis", "RedisServer", "http_once", "log_lines", "run", "say", "warn",
           "Metrics", "Results", "RssSampler", "Wrk", "alternate", "cpu_seconds", "cpu_us_per_request", "drop_page_cache",
           "median", "moved", "ratio", "status_kib", "with_children", "with_cpu"]
