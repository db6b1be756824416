import Instrumentation
import NIOConcurrencyHelpers
import Tracing

/// How StreamGate traces: which work is traced, and how a trace's context travels between
/// processes (in a job's record, to a transcode child, in a webhook's headers).
///
/// Tracing costs nothing until the executable turns it on (``enable()``, when an OTLP endpoint is
/// configured). Then a job's every attempt is traced, and so is an API request; a playback request
/// only when it misses the in-process cache and its sampling draw (``samplePlayback()``) says so.
/// Code below a traced span (a gate decision, a chain call) asks ``span(_:ofKind:_:)``, which
/// makes a span only inside traced work: the fast path and unsampled requests never pay for one.
public enum Traces {
    private static let state = NIOLockedValueBox((enabled: false, playbackRatio: 0.0))

    /// Whether this process exports spans (set once, before any work starts).
    public static var isEnabled: Bool { state.withLockedValue { $0.enabled } }

    /// Turns tracing on; `playbackRatio` is the share of playback requests that miss L1 to trace (0…1).
    public static func enable(playbackRatio: Double) {
        state.withLockedValue { $0 = (true, min(1, max(0, playbackRatio.isFinite ? playbackRatio : 0))) }
    }

    /// Whether the work running now is traced: set by ``traced(_:context:ofKind:attributes:_:)``.
    @TaskLocal public static var isTraced = false

    /// The sampling draw of one playback request that missed L1.
    public static func samplePlayback() -> Bool {
        let (enabled, ratio) = state.withLockedValue { ($0.enabled, $0.playbackRatio) }
        return enabled && ratio > 0 && (ratio >= 1 || Double.random(in: 0..<1) < ratio)
    }

    /// Runs `body` as traced work, in a span of its own under `context` (a job's carried context,
    /// an HTTP request's): every ``span(_:ofKind:_:)`` below it is recorded. With tracing off,
    /// `body` runs alone and is given nil.
    public static func traced<T>(
        _ name: String, context: InstrumentationContext? = nil, ofKind kind: SpanKind = .internal,
        isolation: isolated (any Actor)? = #isolation, _ body: (_ span: (any Span)?) async throws -> T
    ) async rethrows -> T {
        guard isEnabled else { return try await body(nil) }
        return try await $isTraced.withValue(true) {
            try await withSpan(name, context: context ?? .current ?? .topLevel, ofKind: kind) { span in
                try await body(span)
            }
        }
    }

    /// A span for a step of traced work; with nothing traced, `body` runs alone and is given nil.
    public static func span<T>(
        _ name: String, ofKind kind: SpanKind = .internal, isolation: isolated (any Actor)? = #isolation,
        _ body: (_ span: (any Span)?) async throws -> T
    ) async rethrows -> T {
        guard isTraced else { return try await body(nil) }
        return try await withSpan(name, ofKind: kind) { span in try await body(span) }
    }

    /// A span that began and ended elsewhere (a transcode child's stage, measured there and
    /// reported over its pipe), recorded under `parent` with its own start and end.
    public static func record(
        _ name: String, parent: InstrumentationContext, startNanoseconds: UInt64, endNanoseconds: UInt64,
        attributes: SpanAttributes, failed: String? = nil
    ) {
        let span = startSpan(name, at: WallClockInstant(nanosecondsSinceEpoch: startNanoseconds), context: parent)
        span.attributes.merge(attributes)
        if let failed { span.setStatus(SpanStatus(code: .error, message: failed)) }
        span.end(at: WallClockInstant(nanosecondsSinceEpoch: max(startNanoseconds, endNanoseconds)))
    }
}

/// An instant given as nanoseconds since the Unix epoch.
public struct WallClockInstant: TracerInstant {
    public let nanosecondsSinceEpoch: UInt64

    public init(nanosecondsSinceEpoch: UInt64) { self.nanosecondsSinceEpoch = nanosecondsSinceEpoch }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch }
}
