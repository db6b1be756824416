import Dispatch
import Hummingbird
import Metrics
import NIOConcurrencyHelpers

/// `streamgate_api_requests_total{route,method,status}` and
/// `streamgate_api_request_duration_seconds{route,method,status}` for every control API request
/// (`/v1/…`), by the route's pattern (`/v1/jobs/{id}`), so the API's objectives (latency, errors)
/// are measured apart from playback's.
struct APIRequestMetrics<Context: RequestContext>: RouterMiddleware {
    private let handles = APIMetricHandles()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/v1/") else { return try await next(request, context) }
        let started = DispatchTime.now().uptimeNanoseconds
        let route = context.endpointPath ?? "unmatched"
        func record(_ status: Int) {
            handles.record(route: route, method: request.method.rawValue, status: status, nanoseconds: DispatchTime.now().uptimeNanoseconds &- started)
        }
        do {
            let response = try await next(request, context)
            record(Int(response.status.code))
            return response
        } catch let error as any HTTPResponseError {
            record(Int(error.status.code))
            throw error
        } catch {
            record(500)
            throw error
        }
    }
}

/// The metric handles, made once per route, method and status (a bounded set: the routes are the
/// API's own).
final class APIMetricHandles: Sendable {
    private let handles = NIOLockedValueBox<[String: (Counter, Timer)]>([:])

    func record(route: String, method: String, status: Int, nanoseconds: UInt64) {
        let key = "\(route) \(method) \(status)"
        let (count, duration) = handles.withLockedValue { handles in
            if let known = handles[key] { return known }
            let dimensions = [("route", route), ("method", method), ("status", String(status))]
            let made = (
                Counter(label: "streamgate_api_requests_total", dimensions: dimensions),
                Timer(label: "streamgate_api_request_duration_seconds", dimensions: dimensions)
            )
            handles[key] = made
            return made
        }
        count.increment()
        duration.recordNanoseconds(Int64(clamping: nanoseconds))
    }
}
