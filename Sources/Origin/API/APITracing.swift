import Hummingbird
import Traces

/// Traces every control API request (`/v1/…`) when tracing is on, with Hummingbird's tracing
/// middleware: a server span continuing the caller's `traceparent`, under which enqueueing a job
/// hands its trace to the job. Other routes pass through untouched.
struct APITracing<Context: RequestContext>: RouterMiddleware {
    private let tracing = TracingMiddleware<Context>()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/v1/"), Traces.isEnabled else { return try await next(request, context) }
        return try await Traces.$isTraced.withValue(true) {
            try await tracing.handle(request, context: context, next: next)
        }
    }
}
