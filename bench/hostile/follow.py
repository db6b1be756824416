"""bench/hostile/follow.py: the uploads, and the queue's events followed until every job has ended.
"""
import collections
import http.client
import json
import threading
import time

from stack import Redis

# Time a killed transcode may take past --job-timeout before its attempt counts as over the limit:
# the worker polls every 100 ms and waits up to 5 s for the process group to go.
LIMIT_GRACE_S = 30


# ------------------------------------------------------------------------------------------------
# Uploads


def upload_all(stack, entries, files_dir, concurrency):
    """POSTs every file; fills entry["upload"] with the answer."""
    pending = collections.deque(enumerate(entries))
    lock = threading.Lock()

    def worker():
        conn = None
        while True:
            with lock:
                if not pending:
                    break
                index, entry = pending.popleft()
            body = (files_dir / entry["file"]).read_bytes()
            path = "/v1/uploads?profile=fast&asset_id=h%05d" % index
            headers = {"Authorization": "Bearer " + stack.api_key, "Content-Type": "application/octet-stream"}
            for attempt in range(3):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=120)
                    started = time.time()
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    text = response.read().decode("utf-8", "replace")
                    try:
                        answer = json.loads(text)
                    except ValueError:
                        answer = {"error": text[:200]}
                    entry["upload"] = {"status": response.status, "answer": answer, "at": started, "asset": "h%05d" % index}
                    break
                except (OSError, http.client.HTTPException) as error:
                    if conn is not None:
                        conn.close()
                    conn = None
                    entry["upload"] = {"status": 0, "answer": {"error": "upload failed: %s" % error}, "at": time.time()}
                    time.sleep(0.5)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    return threads


# ------------------------------------------------------------------------------------------------
# Following the queue


class Follower:
    """Tails {sg}:events: every attempt's start and end, every job's final state."""

    TERMINAL = {"succeeded", "failed", "dead", "cancelled"}

    def __init__(self, socket_path):
        self.redis = Redis(socket_path)
        self.last = "0-0"
        self.attempts = collections.defaultdict(list)  # job -> [{attempt, start, end, state, error, worker}]
        self.final = {}
        self.last_event = time.time()
        self.last_end = None

    def poll(self):
        reply = self.redis.call("XREAD", "COUNT", "10000", "STREAMS", "{sg}:events", self.last)
        if not reply:
            return 0
        entries = reply[0][1]
        for entry_id, fields in entries:
            self.last = entry_id
            event = dict(zip(fields[0::2], fields[1::2]))
            job, state = event.get("job"), event.get("state")
            if not job or not state:
                continue
            at = int(event.get("at", "0")) / 1000
            runs = self.attempts[job]
            if state == "running":
                if "attempt" in event:
                    runs.append({"attempt": int(event["attempt"]), "start": at, "end": None, "state": None, "error": None,
                                 "worker": event.get("worker")})
                continue
            if state == "queued" and not runs:
                continue
            if runs and runs[-1]["end"] is None and state in self.TERMINAL | {"retrying", "queued"}:
                runs[-1].update(end=at, state="released" if state == "queued" else state, error=event.get("error"))
            if state in self.TERMINAL:
                self.final[job] = {"state": state, "error": event.get("error"), "at": at}
                self.last_end = at
        self.last_event = time.time()
        return len(entries)

    def open_attempts(self):
        return [(job, runs[-1]) for job, runs in self.attempts.items() if runs and runs[-1]["end"] is None]


