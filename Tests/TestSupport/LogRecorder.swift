import Foundation
import Logging
import NIOConcurrencyHelpers

/// What a component logs, kept in memory: for tests that expect a line to be logged (and nowhere
/// else, such as in a response).
public final class LogRecorder: Sendable {
    private let recorded = NIOLockedValueBox<[(level: Logger.Level, text: String)]>([])

    public init() {}

    public func logger(_ label: String = "test") -> Logger {
        Logger(label: label) { _ in Handler(recorder: self) }
    }

    /// Every line as `level message key=value …`, in the order logged.
    public var lines: [String] { recorded.withLockedValue { $0.map { "\($0.level) \($0.text)" } } }

    /// Each error (or worse) as `message key=value …`.
    public var errors: [String] { recorded.withLockedValue { $0.filter { $0.level >= .error }.map(\.text) } }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let fields = self.metadata.merging(event.metadata ?? [:]) { $1 }.map { "\($0.key)=\($0.value)" }.sorted()
            recorder.recorded.withLockedValue { $0.append((event.level, ([event.message.description] + fields).joined(separator: " "))) }
        }
    }
}
