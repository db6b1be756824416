import HTTPTypes
import Hummingbird

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
    }

    /// The answer to a playback request, loading whatever it needs: ``answer(_:mode:progress:)``
    /// in `.mayLoad` mode, each load it asks for run, until it answers.
    func answer(_ request: HTTPRequest, client: PlaybackClient) async -> PlaybackResponse {
        var progress = PlaybackProgress(client: client, encodedHeads: false)
        // Each load fills one slot of `progress` that the next call uses: five kinds, five loads at most.
        for _ in 0...5 {
            switch answer(request, mode: .mayLoad, progress: &progress) {
            case .answer(let answer): return answer
            case .load(let load): await progress.run(load)
            }
        }
        preconditionFailure("a playback answer asked for more loads than there are kinds")
    }
}
