import Foundation
import HTTPTypes
import Hummingbird
import Jobs
import NIOCore
import ServiceLifecycle

/// `GET /v1/events`: server-sent events, one `job` event (the whole record as JSON) each time a job
/// changes state or reports progress. Ends when the server shuts down; browsers reconnect by
/// themselves (`retry`).
extension JobAPI {
    func registerEventRoutes<Context: RequestContext>(on router: Router<Context>) {
        router.get("/v1/events") { request, _ in
            try await self.authorized(request) { self.eventStream() }
        }
    }

    private func eventStream() -> Response {
        let feed = eventFeed
        // Subscribed only once the answer's body is being written: a client gone before that
        // holds no place.
        guard feed.hasRoom else {
            return Self.error(.tooManyRequests, "this server has \(JobEventFeed.maximumSubscribers) live feeds open already")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = ResponseBody { writer in
            guard let (id, updates) = feed.subscribe() else { return try await writer.finish(nil) }
            defer { feed.unsubscribe(id) }
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            // Shutting down ends the stream, so a feed never holds the server's graceful close.
            try await withGracefulShutdownHandler {
                for await update in updates {
                    switch update {
                    case .job(let record):
                        // JSON has no raw newlines, so a record is one `data:` line.
                        let json = String(decoding: try encoder.encode(record), as: UTF8.self)
                        try await writer.write(ByteBuffer(string: "event: job\ndata: \(json)\n\n"))
                    case .ping:
                        try await writer.write(ByteBuffer(string: ": ping\n\n"))
                    }
                }
            } onGracefulShutdown: {
                feed.unsubscribe(id)
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: body
        )
    }
}
