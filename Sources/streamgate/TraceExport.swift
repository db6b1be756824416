import Foundation
import Logging
import OTel
import ServiceLifecycle
import Traces

/// Span export: on when an OTLP endpoint is configured the standard OpenTelemetry way
/// (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), off (and free) otherwise.
/// Spans go over OTLP/HTTP (protobuf) in batches; every other `OTEL_*` setting swift-otel reads
/// (service name, headers, batch delay, timeout) applies. A farm's workers inherit the environment.
enum TraceExport {
    static var endpoint: String? {
        let environment = ProcessInfo.processInfo.environment
        let configured = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
        return configured.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// With an endpoint, log lines carry the trace and span ids of the work that logs them
    /// (`trace_id`, `span_id`). Called once, before any logger is made.
    static func bootstrapLogging() {
        guard endpoint != nil else { return }
        LoggingSystem.bootstrap(
            { label, provider in StreamLogHandler.standardError(label: label, metadataProvider: provider) },
            metadataProvider: OTel.makeLoggingMetadataProvider()
        )
    }

    /// Runs `body` with spans exported when an endpoint is configured; those still buffered when
    /// it ends are sent before this returns. `service` is the default `service.name`;
    /// `playbackRatio` the share of playback requests that miss L1 to trace.
    static func run<T>(service: String, playbackRatio: Double = 0, _ body: () async throws -> T) async throws -> T {
        guard endpoint != nil else { return try await body() }
        var configuration = OTel.Configuration.default
        configuration.serviceName = service
        configuration.logs.enabled = false
        // Prometheus at /metrics stays the metrics backend.
        configuration.metrics.enabled = false
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        // StreamGate decides what to trace (``Traces``): every span it starts is kept.
        configuration.traces.sampler = .parentBasedAlwaysOn
        configuration.propagators = [.traceContext]
        var logger = Logger(label: "streamgate.traces")
        logger.logLevel = .warning
        configuration.diagnosticLogger = .custom(logger)
        let exporter: any Service
        do {
            exporter = try OTel.bootstrap(configuration: configuration)
        } catch {
            throw CommandFailure(message: "tracing: \(error)", code: 78)
        }
        Traces.enable(playbackRatio: playbackRatio)
        let group = ServiceGroup(configuration: .init(services: [exporter], logger: logger))
        let exporting = Task { try await group.run() }
        let result: Result<T, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        await group.triggerGracefulShutdown()
        _ = try? await exporting.value
        return try result.get()
    }
}
