import Hummingbird

extension OriginRoutes {
    /// One route for every playback URL (`/v/**`, any method): ``answer(_:mode:progress:)``, in
    /// `.mayLoad` mode, running each load it asks for until it has the answer.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.on("/v/**", method: .get) { request, context in await self.respond(request, context) }
        router.on("/v/**", method: .head) { request, context in await self.respond(request, context) }
        router.on("/v/**", method: .options) { request, context in await self.respond(request, context) }
    }

    private func respond<Context: RequestContext>(_ request: Request, _ context: Context) async -> Response {
        let address = (context as? any RemoteAddressRequestContext)?.remoteAddress
        var progress = PlaybackProgress(client: client(of: address), encodedHeads: false)
        // Each load fills one slot of `progress` that the next call uses: five kinds, so five
        // loads at most.
        for _ in 0...5 {
            switch answer(request.head, mode: .mayLoad, progress: &progress) {
            case .answer(let answer): return answer.response
            case .load(let load): await progress.run(load)
            }
        }
        preconditionFailure("a playback answer asked for more loads than there are kinds")
    }
}
