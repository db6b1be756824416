/// What each of StreamGate's metrics means: the `# HELP` line `/metrics` gives it. One place, so
/// a metric added without a description shows at once: `promtool check metrics` (run on every
/// endpoint by the tests) refuses a metric without help text.
enum MetricCatalog {
    static let help: [String: String] = [
        // Origin: playback.
        "streamgate_origin_requests_total": "Playback requests answered, by route (master, playlist, segment, key, other) and status.",
        "streamgate_origin_request_duration_seconds": "Time to answer a playback request, by route and status.",
        "streamgate_origin_cache_total": "Cache lookups by level (l1 in process, l2 in Redis) and result (hit, miss).",
        "streamgate_origin_store_reads_total": "Objects read from the store (both caches missed).",
        "streamgate_origin_coalesced_total": "Cache misses that joined another request's load of the same object.",
        "streamgate_origin_warmed_total": "Segments read ahead into the caches after the one asked for.",
        "streamgate_origin_bytes_total": "Body bytes sent, by route.",
        "streamgate_origin_rate_limited_total": "Playback requests refused by a client's rate limit (429).",
        "streamgate_origin_fast_path_total": "Requests answered from L1 on the event loop, without the router.",
        "streamgate_origin_lent_bytes_total": "Body bytes sent by lending L1's pages to the socket rather than copying them.",
        "streamgate_origin_connections": "Open client connections.",
        "streamgate_origin_connections_closed_total": "Client connections the server closed, by reason.",
        "streamgate_origin_store_failovers_total": "Store reads answered from the fallback store because the store failed.",
        // Origin: the control API and analytics.
        "streamgate_api_requests_total": "Control API (/v1) requests, by route pattern, method and status.",
        "streamgate_api_request_duration_seconds": "Time to answer a control API (/v1) request, by route pattern, method and status.",
        "streamgate_jobs_enqueued_total": "Jobs enqueued through this server, by where they came from (api, upload).",
        "streamgate_uploads_total": "Uploads accepted.",
        "streamgate_upload_bytes_total": "Bytes of accepted uploads.",
        "streamgate_uploads_rejected_total": "Uploads refused, by reason.",
        "streamgate_analytics_dropped_total": "Viewer analytics events not tallied because a bound was reached (sessions, assets, renditions).",
        "streamgate_analytics_flush_failures_total": "Viewer analytics flushes Redis did not take (their tallies are lost).",
        // The queue, as every server sees it.
        "streamgate_queue_waiting": "Jobs waiting for a worker, by priority.",
        "streamgate_queue_pending": "Jobs taken by a worker and not yet finished, by priority.",
        "streamgate_queue_oldest_waiting_seconds": "Age of the oldest job waiting for a worker, by priority.",
        "streamgate_queue_refreshed_timestamp_seconds": "When the queue figures were last read from Redis (Unix time).",
        "streamgate_jobs": "Jobs by state.",
        "streamgate_dead_letters": "Jobs in the dead-letter stream.",
        "streamgate_workers": "Workers whose heartbeat is fresh.",
        // Workers and farms.
        "streamgate_jobs_running": "Jobs this worker runs now.",
        "streamgate_jobs_total": "Attempts this worker ended, by outcome.",
        "streamgate_transcode_seconds": "Wall time of a transcode that reached the store.",
        "streamgate_transcode_speed": "Media seconds transcoded per wall second.",
        "streamgate_farm_worker_restarts_total": "Worker processes a farm restarted after they ended unasked, by farm.",
        // The NFT gate.
        "streamgate_gate_key_authorizations_total": "Content key requests of gated assets, by outcome.",
        "streamgate_gate_siwe_total": "Sign-In With Ethereum attempts, by outcome.",
        "streamgate_gate_auth_refused_total": "Sign-in requests refused before verification, by reason.",
        "streamgate_gate_ownership_checks_total": "NFT ownership checks, by where the answer came from and its result.",
        "streamgate_gate_rpc_calls_total": "Ethereum JSON-RPC calls, by endpoint, method and outcome.",
        "streamgate_gate_rpc_duration_seconds": "Time of an Ethereum JSON-RPC exchange, by endpoint.",
    ]

    /// `text` (Prometheus exposition format) with a `# HELP` line before each `# TYPE` line whose
    /// metric the catalog describes.
    static func withHelp(_ text: [UInt8]) -> [UInt8] {
        let prefix = Array("# TYPE ".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.count + 4096)
        var start = 0
        while start < text.count {
            let end = text[start...].firstIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? text.count
            let line = text[start..<end]
            if line.starts(with: prefix) {
                let name = line.dropFirst(prefix.count).prefix { $0 != UInt8(ascii: " ") }
                if let help = help[String(decoding: name, as: UTF8.self)] {
                    out += Array("# HELP ".utf8) + name + Array(" \(help)\n".utf8)
                }
            }
            out += line
            start = end
        }
        return out
    }
}
