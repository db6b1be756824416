"""benchlib.measure: what a bench measures with and what it keeps.

wrk driven by a list-reading Lua script, CPU time and memory from /proc, the page cache emptied, a
server's /metrics page, the order of the sides in a round, medians and ratios, and
WORK/results.jsonl with the `summary key=value …` line.
"""

import json
import os
import re
import signal
import statistics
import subprocess
import threading
import time
import uuid

from .driver import ROOT, Failure, http_once, say


# --- /proc: CPU time and memory ---------------------------------------------------------------------

def cpu_seconds(pids):
    """User + system CPU time of whole processes (every thread), seconds; None when none can be read."""
    ticks, read = 0, False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
            read = True
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK") if read else None


def with_cpu(pids, action):
    """(action(), the CPU seconds `pids` spent meanwhile or None)."""
    before = cpu_seconds(pids)
    result = action()
    after = cpu_seconds(pids)
    return result, (after - before if None not in (before, after) else None)


def cpu_us_per_request(cpu, requests):
    return cpu * 1e6 / requests if cpu is not None and requests else None


def with_children(pid):
    """A process and its children (nginx's master and workers), from /proc/*/stat."""
    found = [pid]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass
    return found


def status_kib(pid, field):
    """A kB field of /proc/PID/status (VmRSS, VmHWM), or None."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class RssSampler:
    """Samples the VmRSS of watched processes every 100 ms; keeps the peak per (phase, name)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.targets = {}  # name -> a callable returning the pids to add up
        self.phase = "idle"
        self.peaks = {}
        self.running = True
        threading.Thread(target=self.loop, daemon=True).start()

    def watch(self, name, pids):
        with self.lock:
            self.targets[name] = pids

    def unwatch(self, name):
        with self.lock:
            self.targets.pop(name, None)

    def set_phase(self, phase):
        with self.lock:
            self.phase = phase

    def loop(self):
        while self.running:
            with self.lock:
                targets, phase = dict(self.targets), self.phase
            for name, pids in targets.items():
                rss = sum(status_kib(pid, "VmRSS") or 0 for pid in pids())
                with self.lock:
                    self.peaks[(phase, name)] = max(rss, self.peaks.get((phase, name), 0))
            time.sleep(0.1)

    def peak_mib(self, phase, name):
        with self.lock:
            return self.peaks.get((phase, name), 0) / 1024

    def stop(self):
        self.running = False


# --- The page cache ---------------------------------------------------------------------------------

def drop_page_cache(paths, allowed):
    """Empties the page cache (of `paths`, at least) before a cold pass; returns how it was done."""
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


# --- wrk --------------------------------------------------------------------------------------------

class Wrk:
    """wrk driven by a Lua script that reads a request list and prints `MARKER {json}` in done().

    The scripts' arguments are `LIST [ARGS…] MODE THREADS CONNECTIONS`. In mode `once` each thread
    prints `MARKER-thread-done` when its share is answered; wrk's main thread still sleeps for -d,
    so it gets SIGINT once every thread is done, and the rate uses the threads' own clock.
    """

    def __init__(self, script, marker, folder, pids_file, threads, timeout=10):
        self.script, self.marker, self.folder, self.pids_file = script, marker, folder, pids_file
        self.threads, self.timeout = threads, timeout
        self.count = 0

    def run(self, port, list_file, mode, duration, label, connections, list_args=()):
        """One wrk run, its output kept in FOLDER/wrk-NN-LABEL.log; returns its figures."""
        self.count += 1
        command = ["wrk", "-t", str(self.threads), "-c", str(connections), "-d", f"{duration}s",
                   "--timeout", f"{self.timeout}s", "--latency", "-s", self.script, f"http://127.0.0.1:{port}/",
                   "--", list_file, *list_args, mode, str(self.threads), str(connections)]
        log_path = os.path.join(self.folder, f"wrk-{self.count:02d}-{label}.log")
        lines, done_threads = [], [0]
        with open(log_path, "w") as log:
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, text=True, bufsize=1)
            with open(self.pids_file, "a") as pids:
                pids.write(f"{process.pid}\n")

            def read():
                for line in process.stdout:
                    lines.append(line)
                    log.write(line)
                    if line.startswith(f"{self.marker}-thread-done"):
                        done_threads[0] += 1

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            deadline = time.monotonic() + duration + 60
            try:
                while process.poll() is None:
                    if mode == "once" and done_threads[0] >= self.threads:
                        process.send_signal(signal.SIGINT)
                    if time.monotonic() > deadline:
                        raise Failure(f"wrk did not finish (log {log_path})")
                    time.sleep(0.02)
            finally:
                if process.poll() is None:  # interrupted or stuck: do not leave it loading the server
                    process.kill()
                    process.wait()
            reader.join(timeout=10)
        if process.returncode != 0:
            raise Failure(f"wrk failed with status {process.returncode} (log {log_path}):\n{''.join(lines[-10:])}")
        report = next((line for line in lines if line.startswith(f"{self.marker} {{")), None)
        if report is None:
            raise Failure(f"wrk printed no figures (log {log_path}):\n{''.join(lines[-10:])}")
        figures = json.loads(report.split(" ", 1)[1])
        if mode == "once":
            if figures["elapsed_us"] <= 0 or done_threads[0] < self.threads:
                raise Failure(f"the pass over {list_file} did not finish within {duration} s (log {log_path})")
            seconds = figures["elapsed_us"] / 1e6
        else:
            seconds = figures["duration_us"] / 1e6
        latency, errors = figures["latency_us"], figures["errors"]
        return {
            "requests": figures["requests"], "seconds": round(seconds, 4), "rps": figures["requests"] / seconds,
            "mb_per_s": figures["bytes"] / seconds / 1e6,
            "p50_ms": latency["p50"] / 1000, "p90_ms": latency["p90"] / 1000, "p99_ms": latency["p99"] / 1000,
            "p999_ms": latency["p999"] / 1000, "max_ms": latency["max"] / 1000, "mean_ms": latency["mean"] / 1000,
            "non_2xx_3xx": errors["status"],
            "socket_errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
            "errors": errors,
            "log": os.path.relpath(log_path, ROOT),
        }


# --- Metrics (Prometheus text format) ---------------------------------------------------------------

SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?[0-9]+)?\s*$")
LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


class Metrics:
    """A server's /metrics page: (name, {label: value}, value) for every sample line."""

    def __init__(self, text):
        self.samples = []
        for line in text.splitlines():
            line = line.strip()
            match = None if line.startswith("#") else SAMPLE.match(line)
            if not match:
                continue
            name, raw_labels, raw_value = match.groups()
            labels = {label.group(1): label.group(2).encode().decode("unicode_escape")
                      for label in LABEL.finditer(raw_labels or "")}
            try:
                self.samples.append((name, labels, float(raw_value)))
            except ValueError:
                continue

    @classmethod
    def fetch(cls, port):
        status, body = http_once(port, "GET", "/metrics")
        if status != 200:
            raise Failure(f"GET /metrics answered {status}")
        return cls(body.decode("utf-8", "replace"))

    def sum(self, name, **labels):
        """The sum of `name`'s series whose labels include `labels`; None when there is none."""
        values = [value for sample_name, sample_labels, value in self.samples
                  if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items())]
        return sum(values) if values else None

    def by(self, name, label, **match):
        """{label value: sum} of `name`'s series (those whose labels include `match`)."""
        out = {}
        for sample_name, labels, value in self.samples:
            if sample_name == name and all(labels.get(k) == v for k, v in match.items()):
                out[labels.get(label, "")] = out.get(labels.get(label, ""), 0.0) + value
        return out


def moved(before, after, name, **labels):
    """How far a counter moved between two readings (a missing counter counts as 0)."""
    return (after.sum(name, **labels) or 0) - (before.sum(name, **labels) or 0)


# --- Figures and results ----------------------------------------------------------------------------

def median(values):
    return statistics.median(values) if values else float("nan")


def ratio(a, b):
    return a / b if b else float("nan")


def alternate(sides, round_number):
    """The order of the sides in a round: as given in odd rounds, reversed in even ones, so that
    each pair of sides takes turns at going first, whatever their number."""
    return tuple(sides) if round_number % 2 else tuple(reversed(sides))


class Results:
    """WORK/results.jsonl: each load run and then the summary appended as a JSON line, with this
    run's invocation id and the time; the rows are kept for the medians."""

    def __init__(self, path):
        self.path = path
        self.invocation = uuid.uuid4().hex[:12]
        self.rows = []

    def _append(self, row):
        with open(self.path, "a") as out:
            out.write(json.dumps(row, sort_keys=True) + "\n")

    def record(self, scenario, **fields):
        row = {"invocation": self.invocation, "time": round(time.time(), 3), "scenario": scenario, **fields}
        self.rows.append(row)
        self._append(row)
        return row

    def pick(self, key, **match):
        """`key` of the recorded rows whose fields equal `match`, Nones left out."""
        return [row[key] for row in self.rows
                if all(row.get(k) == v for k, v in match.items()) and row.get(key) is not None]

    def median(self, key, **match):
        """The median of `key` over the recorded rows that match, or None when none has it."""
        values = self.pick(key, **match)
        return median(values) if values else None

    def summary(self, line, **fields):
        """Appends the summary row, then prints `summary k=v …` from `line` ({key: formatted value})."""
        self._append({"invocation": self.invocation, "time": round(time.time(), 3), "scenario": "summary", **fields})
        say("summary " + " ".join(f"{key}={value}" for key, value in line.items()))
