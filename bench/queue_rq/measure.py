"""bench/queue's rq side: enqueue latency, then end-to-end throughput of no-op jobs through the rq
worker that is running, on the same redis-server StreamGate used. Prints one JSON line with the
same fields as `streamgate bench-queue`."""

import json
import sys
import time

from redis import Redis
from rq import Queue
from rq.registry import FinishedJobRegistry

from tasks import noop


def wait_for(registry, target, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if registry.count >= target:
            return
        time.sleep(0.005)
    sys.exit(f"rq: the worker did not finish {target} jobs within {timeout} s")


def main():
    socket, jobs, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 600
    connection = Redis(unix_socket_path=socket)
    queue = Queue("bench", connection=connection)
    finished = FinishedJobRegistry(queue=queue)

    latencies = []
    for _ in range(samples):
        started = time.perf_counter()
        queue.enqueue(noop)
        latencies.append((time.perf_counter() - started) * 1000)
    wait_for(finished, samples, timeout)

    started = time.perf_counter()
    # Pipelined batches, as StreamGate's side enqueues them.
    for offset in range(0, jobs, 500):
        size = min(500, jobs - offset)
        with connection.pipeline() as pipe:
            queue.enqueue_many([Queue.prepare_data(noop) for _ in range(size)], pipeline=pipe)
            pipe.execute()
    enqueued = time.perf_counter() - started
    wait_for(finished, samples + jobs, timeout)
    elapsed = time.perf_counter() - started

    latencies.sort()

    def percentile(p):
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else 0

    print(json.dumps({
        "jobs": jobs, "seconds": elapsed, "jobs_per_s": jobs / elapsed, "enqueue_only_jobs_per_s": jobs / enqueued,
        "enqueue_p50_ms": percentile(0.5), "enqueue_p99_ms": percentile(0.99),
    }, sort_keys=True))


if __name__ == "__main__":
    main()
