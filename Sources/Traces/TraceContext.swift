import Instrumentation
import Tracing

/// A trace's context in the W3C form that travels outside a process: the `traceparent` (and
/// `tracestate`) a job's record keeps, a transcode child is given and a webhook or chain call sends.
public struct TraceContext: Sendable, Equatable, Codable {
    public var traceparent: String
    public var tracestate: String?

    public init?(traceparent: String, tracestate: String? = nil) {
        guard Self.isValid(traceparent: traceparent) else { return nil }
        self.traceparent = traceparent
        // A state that does not fit is dropped, never passed on (it is only a vendor's hint).
        self.tracestate = tracestate.flatMap { Self.isValid(tracestate: $0) ? $0 : nil }
    }

    /// The context of the span running now, as the tracer writes it; nil with tracing off or no span.
    public static func current() -> TraceContext? {
        guard Traces.isEnabled, let context = InstrumentationContext.current else { return nil }
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: DictionaryInjector())
        return headers["traceparent"].flatMap { TraceContext(traceparent: $0, tracestate: headers["tracestate"]) }
    }

    /// The headers to send along a request (`traceparent`, `tracestate`).
    public var headers: [(String, String)] {
        [("traceparent", traceparent)] + (tracestate.map { [("tracestate", $0)] } ?? [])
    }

    /// This context as the tracer's, to start spans under.
    public var instrumentationContext: InstrumentationContext {
        var context = InstrumentationContext.topLevel
        let headers = ["traceparent": traceparent].merging(tracestate.map { ["tracestate": $0] } ?? [:]) { $1 }
        InstrumentationSystem.instrument.extract(headers, into: &context, using: DictionaryExtractor())
        return context
    }

    /// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase, ids not all zeros
    /// (W3C Trace Context, version 00; a later version may append fields after a dash).
    public static func isValid(traceparent: String) -> Bool {
        let bytes = Array(traceparent.utf8)
        guard bytes.count == 55 || (bytes.count > 55 && bytes.count <= 256 && bytes[55] == UInt8(ascii: "-")) else { return false }
        func hex(_ range: Range<Int>) -> Bool {
            bytes[range].allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
        }
        let dashes = [2, 35, 52].allSatisfy { bytes[$0] == UInt8(ascii: "-") }
        guard dashes, hex(0..<2), hex(3..<35), hex(36..<52), hex(53..<55) else { return false }
        guard bytes[0..<2] != [UInt8(ascii: "f"), UInt8(ascii: "f")] else { return false }
        if bytes[0..<2] == [48, 48], bytes.count != 55 { return false }
        let zero = UInt8(ascii: "0")
        return !bytes[3..<35].allSatisfy { $0 == zero } && !bytes[36..<52].allSatisfy { $0 == zero }
    }

    /// At most 512 bytes of printable ASCII (the W3C bound on what a vendor may carry).
    public static func isValid(tracestate: String) -> Bool {
        let bytes = tracestate.utf8
        return bytes.count <= 512 && bytes.allSatisfy { (0x20...0x7E).contains($0) }
    }
}

struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}

struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}
