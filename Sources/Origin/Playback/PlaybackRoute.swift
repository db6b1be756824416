import HTTPTypes
import Hummingbird
import Instrumentation
import Traces

extension OriginRoutes {
    /// One route for every playback URL (`/v/**`): GET, HEAD and OPTIONS, answered by
    /// ``answer(_:client:)``.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        for method in [HTTPRequest.Method.get, .head, .options] {
            router.on("/v/**", method: method) { request, context in
                let address = (context as? any RemoteAddressRequestContext)?.remoteAddress
                return await self.answer(request.head, client: self.client(of: address)).response
            }
        }
        registerBeacons(on: router)
    }

    /// The answer to a playback request, loading whatever it needs: ``answer(_:mode:progress:)``
    /// in `.mayLoad` mode, each load it asks for run, until it answers. A request that needs a
    /// load (it missed L1) is traced when its sampling draw says so; one answered from memory never.
    func answer(_ request: HTTPRequest, client: PlaybackClient) async -> PlaybackResponse {
        var progress = PlaybackProgress(client: client, encodedHeads: false)
        let first = answer(request, mode: .mayLoad, progress: &progress)
        guard case .load = first, Traces.samplePlayback() else { return await loading(first, request, &progress) }
        var parent = InstrumentationContext.topLevel
        InstrumentationSystem.instrument.extract(request.headerFields, into: &parent, using: HTTPFieldsExtractor())
        return await Traces.traced("GET /v/{asset}", context: parent, ofKind: .server) { span in
            span?.updateAttributes { attributes in
                attributes["http.request.method"] = request.method.rawValue
                attributes["url.path"] = request.path.map { String($0.prefix(256)) }
            }
            let response = await loading(first, request, &progress)
            span?.attributes["http.response.status_code"] = Int(response.status.code)
            return response
        }
    }

    /// Runs `step`'s load, and each the answer asks for next, until it answers.
    private func loading(_ step: PlaybackStep, _ request: HTTPRequest, _ progress: inout PlaybackProgress) async -> PlaybackResponse {
        var step = step
        // Each load fills one slot of `progress` that the next call uses: five kinds, five loads at most.
        for _ in 0...5 {
            switch step {
            case .answer(let answer): return answer
            case .load(let load): await progress.run(load)
            }
            step = answer(request, mode: .mayLoad, progress: &progress)
        }
        if case .answer(let answer) = step { return answer }
        preconditionFailure("a playback answer asked for more loads than there are kinds")
    }
}

/// Reads a request's trace headers (`traceparent`, `tracestate`).
struct HTTPFieldsExtractor: Extractor {
    func extract(key: String, from fields: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { fields[$0] }
    }
}
