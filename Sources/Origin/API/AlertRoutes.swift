import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore

/// The alerts a deployment's Prometheus holds (deploy/prometheus), for the console: firing and
/// pending, with their severity, summary and runbook. Read from Prometheus's HTTP API
/// (`/api/v1/alerts`) on demand, with a deadline and a size limit; nothing is kept.
public struct PrometheusAlerts: Sendable {
    public struct Alert: Codable, Sendable, Equatable {
        public var name: String
        public var state: String
        public var severity: String?
        public var summary: String?
        public var runbook: String?
        /// When it became active (RFC 3339, as Prometheus gives it).
        public var since: String?
    }

    /// Prometheus's base URL (`http://prometheus:9090`).
    public let baseURL: String
    static let maximumBytes = 4 << 20
    static let deadline: TimeAmount = .seconds(3)

    public init(baseURL: String) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    }

    /// The active alerts, firing first; throws a sentence naming what failed.
    public func active(client: HTTPClient = .shared) async throws -> [Alert] {
        let request = HTTPClientRequest(url: baseURL + "/api/v1/alerts")
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: Self.deadline)
        } catch {
            throw AlertsUnavailable("Prometheus at \(baseURL) cannot be reached: \(error)")
        }
        guard response.status == .ok else { throw AlertsUnavailable("Prometheus at \(baseURL) answered \(response.status.code)") }
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: Self.maximumBytes)
        } catch {
            throw AlertsUnavailable("Prometheus's alerts are over \(Self.maximumBytes >> 20) MiB")
        }
        return try Self.parse(Data(buffer: body))
    }

    /// Prometheus's `{"status":"success","data":{"alerts":[…]}}`, read leniently field by field.
    public static func parse(_ data: Data) throws -> [Alert] {
        struct Answer: Decodable {
            struct Payload: Decodable { var alerts: [Raw] }
            struct Raw: Decodable {
                var labels: [String: String]?
                var annotations: [String: String]?
                var state: String?
                var activeAt: String?
            }
            var status: String
            var data: Payload?
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: data), answer.status == "success", let payload = answer.data else {
            throw AlertsUnavailable("Prometheus's answer is not an alert list")
        }
        let alerts = payload.alerts.compactMap { raw -> Alert? in
            guard let name = raw.labels?["alertname"], let state = raw.state, state != "inactive" else { return nil }
            return Alert(
                name: name, state: state, severity: raw.labels?["severity"], summary: raw.annotations?["summary"],
                runbook: raw.annotations?["runbook_url"] ?? raw.annotations?["runbook"], since: raw.activeAt
            )
        }
        return alerts.sorted { ($0.state == "firing" ? 0 : 1, $0.name) < ($1.state == "firing" ? 0 : 1, $1.name) }
    }
}

public struct AlertsUnavailable: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// `GET /v1/alerts`: `{configured, alerts}` (503 naming why when Prometheus cannot be read).
extension JobAPI {
    func registerAlertRoutes<Context: RequestContext>(on router: Router<Context>) {
        router.get("/v1/alerts") { request, _ in
            try await self.authorized(request) {
                guard let alerts = self.alerts else { return try Self.json(.ok, AlertList(configured: false, alerts: [])) }
                do {
                    return try Self.json(.ok, AlertList(configured: true, alerts: try await alerts.active()))
                } catch let unavailable as AlertsUnavailable {
                    return Self.error(.serviceUnavailable, unavailable.description)
                }
            }
        }
    }

    struct AlertList: Encodable {
        var configured: Bool
        var alerts: [PrometheusAlerts.Alert]
    }
}
