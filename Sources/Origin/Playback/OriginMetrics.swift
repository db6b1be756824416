import Metrics
import NIOConcurrencyHelpers

/// The origin's metrics, through swift-metrics (rendered by swift-prometheus at `/metrics`):
///
/// - `streamgate_origin_requests_total{route,status}` and
///   `streamgate_origin_request_duration_seconds{route,status}` (a histogram);
/// - `streamgate_origin_cache_total{level="l1"|"l2",result="hit"|"miss"}`;
/// - `streamgate_origin_store_reads_total`, `streamgate_origin_coalesced_total` (misses that
///   joined another request's load), `streamgate_origin_warmed_total` (segments read ahead);
/// - `streamgate_origin_bytes_total{route}` (body bytes sent), `streamgate_origin_rate_limited_total`;
/// - `streamgate_origin_fast_path_total`: requests answered from L1 on the event loop, without the router;
/// - `streamgate_origin_lent_bytes_total`: body bytes sent by lending their pages to the socket
///   (``PageLender``) rather than copying them; next to `streamgate_origin_bytes_total`, the share
///   sent without a copy.
///
/// Handles are made once and kept: the hot path only increments.
final class OriginMetrics: Sendable {
    enum Route: String, CaseIterable, Sendable {
        case master, playlist, segment, key, other

        /// A file's route, by its name within its version.
        init(file relative: String) {
            if relative == "master.m3u8" {
                self = .master
            } else {
                self = relative.hasSuffix(".m3u8") ? .playlist : .segment
            }
        }
    }

    private struct Handles: Sendable {
        let requests: Counter
        let duration: Timer
    }

    private let handles = NIOLockedValueBox<[Int: Handles]>([:])
    private let bytes: [Route: Counter]
    let l1Hit = Counter(label: "streamgate_origin_cache_total", dimensions: [("level", "l1"), ("result", "hit")])
    let l1Miss = Counter(label: "streamgate_origin_cache_total", dimensions: [("level", "l1"), ("result", "miss")])
    let l2Hit = Counter(label: "streamgate_origin_cache_total", dimensions: [("level", "l2"), ("result", "hit")])
    let l2Miss = Counter(label: "streamgate_origin_cache_total", dimensions: [("level", "l2"), ("result", "miss")])
    let storeReads = Counter(label: "streamgate_origin_store_reads_total")
    let coalesced = Counter(label: "streamgate_origin_coalesced_total")
    let warmed = Counter(label: "streamgate_origin_warmed_total")
    let rateLimited = Counter(label: "streamgate_origin_rate_limited_total")
    let fastPath = Counter(label: "streamgate_origin_fast_path_total")
    let lentBytes = Counter(label: "streamgate_origin_lent_bytes_total")

    init() {
        var bytes: [Route: Counter] = [:]
        for route in Route.allCases {
            bytes[route] = Counter(label: "streamgate_origin_bytes_total", dimensions: [("route", route.rawValue)])
        }
        self.bytes = bytes
    }

    func request(_ route: Route, status: Int, nanoseconds: UInt64, bodyBytes: Int) {
        let slot = (Route.allCases.firstIndex(of: route) ?? 0) * 1000 + status
        let handle = handles.withLockedValue { handles -> Handles in
            if let known = handles[slot] { return known }
            let dimensions = [("route", route.rawValue), ("status", String(status))]
            let made = Handles(
                requests: Counter(label: "streamgate_origin_requests_total", dimensions: dimensions),
                duration: Timer(label: "streamgate_origin_request_duration_seconds", dimensions: dimensions)
            )
            handles[slot] = made
            return made
        }
        handle.requests.increment()
        handle.duration.recordNanoseconds(Int64(clamping: nanoseconds))
        if bodyBytes > 0 { bytes[route]?.increment(by: bodyBytes) }
    }
}
