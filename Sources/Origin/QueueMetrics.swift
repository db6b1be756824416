import Foundation
import Jobs
import Metrics

/// Queue figures as gauges, refreshed every few seconds by the server: jobs by state, depth, lag,
/// pending and oldest age per priority, live workers. Every replica reports the same queue, so a
/// dashboard takes the max (not the sum) across replicas.
public enum QueueMetrics {
    public static func refresh(from queue: JobQueue) async throws {
        let stats = try await queue.stats()
        for (priority, figures) in stats.priorities {
            let dimensions = [("priority", priority)]
            Gauge(label: "streamgate_queue_waiting", dimensions: dimensions).record(figures.lag)
            Gauge(label: "streamgate_queue_pending", dimensions: dimensions).record(figures.pending)
            Gauge(label: "streamgate_queue_oldest_waiting_seconds", dimensions: dimensions).record(figures.oldestWaitingSeconds ?? 0)
        }
        Gauge(label: "streamgate_jobs", dimensions: [("state", "queued")]).record(stats.depth)
        Gauge(label: "streamgate_jobs", dimensions: [("state", "running")]).record(stats.pending)
        Gauge(label: "streamgate_jobs", dimensions: [("state", "retrying")]).record(stats.delayed)
        for state in ["succeeded", "failed", "dead", "cancelled"] {
            Gauge(label: "streamgate_jobs", dimensions: [("state", state)]).record(stats.totals[state] ?? 0)
        }
        Gauge(label: "streamgate_dead_letters").record(stats.dead)
        Gauge(label: "streamgate_workers").record(stats.workers)
        // When the figures above were true: a Redis that stops answering freezes them, and the
        // alerts tell stale figures by this.
        Gauge(label: "streamgate_queue_refreshed_timestamp_seconds").record(Date().timeIntervalSince1970)
    }

    /// Refreshes until the task is cancelled.
    public static func run(queue: JobQueue, every seconds: Double = 5) async {
        while !Task.isCancelled {
            try? await refresh(from: queue)
            try? await Task.sleep(for: .seconds(seconds))
        }
    }
}
