import Metrics
import Prometheus

/// The process's metrics: swift-metrics backed by a Prometheus registry, rendered at `/metrics`.
enum Telemetry {
    static let registry = PrometheusCollectorRegistry()

    /// Installs the Prometheus backend once, with StreamGate's histogram buckets.
    static func bootstrap() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["streamgate_transcode_seconds"] = [
            .seconds(1), .seconds(5), .seconds(15), .seconds(30), .seconds(60), .seconds(120), .seconds(300),
            .seconds(600), .seconds(1800), .seconds(3600), .seconds(7200),
        ]
        factory.valueHistogramBuckets["streamgate_transcode_speed"] = [0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64]
        MetricsSystem.bootstrap(factory)
    }

    static let render: @Sendable () -> [UInt8] = { MetricCatalog.withHelp(registry.emitToBuffer()) }
}
