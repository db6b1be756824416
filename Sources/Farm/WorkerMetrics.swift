import Foundation
import Metrics

/// What a worker counts: jobs by outcome, transcode wall time and speed (× realtime), jobs running.
enum WorkerMetrics {
    static func ended(_ outcome: String) {
        Counter(label: "streamgate_jobs_total", dimensions: [("outcome", outcome)]).increment()
    }

    static func transcoded(seconds: Double, speed: Double?) {
        Metrics.Timer(label: "streamgate_transcode_seconds").recordNanoseconds(Int64(seconds * 1_000_000_000))
        if let speed, speed > 0 { Recorder(label: "streamgate_transcode_speed", aggregate: true).record(speed) }
    }

    static func running(_ count: Int) {
        Gauge(label: "streamgate_jobs_running").record(count)
    }
}
