import Foundation
import Gate
import HTTPTypes
import Store
import Traces

// The one place a playback request is answered.
//
// ``OriginRoutes/answer(_:mode:progress:)`` takes a request apart (``KnownTarget``), asks
// each memory it needs (versions, L1, policies, the gate, keys) through one ``Lookup`` each, and
// applies rate limits, CORS, metrics, conditional requests and ranges, exactly once. When a memory
// does not hold what it needs, it says which load would (``PlaybackStep/load(_:)``). Two callers:
//
// - the fast path (``PlaybackFastPath``), in front of the HTTP decoder, asks `.memoryOnly` and
//   hands the request on untouched when a load is needed;
// - the router's one playback route (``OriginRoutes/register(on:)``) asks `.mayLoad`, runs each
//   load into ``PlaybackProgress`` and asks again until it has the answer.
//
// So the two give the same answer by construction; `FastPathTests.sameAnswers` checks it.

/// Whether an answer may wait for loads.
enum PlaybackMode {
    /// The fast path: only what memory holds now; the rate limit is not taken for a request that
    /// will be handed on (the router takes it).
    case memoryOnly
    /// The router: the rate limit is taken before the first load, so a limited client costs no
    /// reads.
    case mayLoad
}

/// What an answer needs that memory did not hold, as the work that loads it.
enum PlaybackLoad: Sendable {
    case version(@Sendable () async throws -> PublishedVersion?)
    case object(@Sendable () async throws -> CachedObject?)
    case partial(@Sendable () async throws -> PartialObject?)
    case policy(@Sendable () async throws -> AccessPolicy?)
    case authorization(@Sendable () async throws -> KeyAuthorization)
    case key(@Sendable () async throws -> LoadedKey)
}

/// One answer's step: the answer, or the load it waits for.
enum PlaybackStep {
    case answer(PlaybackResponse)
    case load(PlaybackLoad)
}

/// One request's way to its answer: who asks, since when, whether the rate limit was taken, and
/// what has been loaded for it (each used in place of asking memory again).
struct PlaybackProgress {
    let client: PlaybackClient
    var version: Result<PublishedVersion?, any Error>?
    var object: Result<CachedObject?, any Error>?
    var partial: Result<PartialObject?, any Error>?
    var policy: Result<AccessPolicy?, any Error>?
    var authorization: Result<KeyAuthorization, any Error>?
    var key: Result<LoadedKey, any Error>?
    /// The rate limit was taken (once a request).
    var admitted = false
    /// When the request arrived (for the duration metric).
    let started = DispatchTime.now().uptimeNanoseconds
    /// Whether an answer for a whole file may come with its head already encoded
    /// (``CachedObject/wholeHeads``): the fast path writes bytes, the router writes fields.
    var encodedHeads = false

    init(client: PlaybackClient, encodedHeads: Bool) {
        self.client = client
        self.encodedHeads = encodedHeads
    }

    /// Runs `load` and keeps its outcome, failure included (the answer names it); in a span of
    /// its own when the request is traced.
    mutating func run(_ load: PlaybackLoad) async {
        guard Traces.isTraced else { return await runNow(load) }
        await Traces.span(load.spanName) { span in
            await runNow(load)
            span?.attributes["streamgate.outcome"] = outcome(of: load)
        }
    }

    private mutating func runNow(_ load: PlaybackLoad) async {
        switch load {
        case .version(let work): version = await Result { try await work() }
        case .object(let work): object = await Result { try await work() }
        case .partial(let work): partial = await Result { try await work() }
        case .policy(let work): policy = await Result { try await work() }
        case .authorization(let work): authorization = await Result { try await work() }
        case .key(let work): key = await Result { try await work() }
        }
    }

    /// How `load` ended, for its span: the gate's decision, or whether the thing was found.
    private func outcome(of load: PlaybackLoad) -> String {
        func described<T>(_ result: Result<T?, any Error>?) -> String {
            switch result {
            case .success(.some)?: "found"
            case .success(nil)?: "missing"
            case .failure(let error)?: "failed: \(error)"
            case nil: "not run"
            }
        }
        switch load {
        case .version: return described(version)
        case .object: return described(object)
        case .partial: return described(partial)
        case .policy: return described(policy)
        case .authorization:
            switch authorization {
            case .success(.granted)?: return "granted"
            case .success(.refused(let why, _))?: return "refused: \(why)"
            case .failure(let error)?: return "failed: \(error)"
            case nil: return "not run"
            }
        case .key:
            switch key {
            case .success?: return "found"
            case .failure(let error)?: return "failed: \(error)"
            case nil: return "not run"
            }
        }
    }
}

extension PlaybackLoad {
    /// The span a traced request gives this load.
    var spanName: String {
        switch self {
        case .version: "load version"
        case .object: "load object"
        case .partial: "load range"
        case .policy: "load policy"
        case .authorization: "gate authorize"
        case .key: "load key"
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

extension OriginRoutes {
    /// The answer to a playback request (`GET`, `HEAD` or `OPTIONS` of a `/v/…` URL), or the load it
    /// waits for. See the top of this file.
    func answer(_ request: HTTPRequest, mode: PlaybackMode, progress: inout PlaybackProgress) -> PlaybackStep {
        var answering = Answering(request: request, route: .other)
        switch request.method {
        case .get, .head: break
        case .options:
            guard let known = KnownTarget.memo(request.path), known.asset != nil else { return finish(Self.notFound, &answering, &progress) }
            return finish(preflight(request.headerFields), &answering, &progress)
        default:
            var refusal = PlaybackResponse.plain(.methodNotAllowed, "playback URLs answer GET, HEAD and OPTIONS\n")
            refusal.headers[.allow] = "GET, HEAD, OPTIONS"
            return finish(refusal, &answering, &progress)
        }
        guard let known = KnownTarget.memo(request.path), let asset = known.asset else { return finish(Self.notFound, &answering, &progress) }
        answering.route = known.route

        let version: PublishedVersion
        switch found(progress.version, directory.resolve(asset, version: known.target.version), mode, &progress, PlaybackLoad.version) {
        case .value(let resolved?): version = resolved
        case .value(nil): return finish(Self.notFound, &answering, &progress)
        case .failed(let error): return failed(error, &answering, &progress)
        case .step(let step): return step
        }
        // A published asset: its answer counts for viewer analytics.
        answering.viewing = known

        switch known.target.kind {
        case .file(let type):
            return file(known, type, version, asset, mode, &answering, &progress)
        case .key(let keyID):
            return key(keyID, token: known.target.token, version, asset, mode, &answering, &progress)
        }
    }

    /// A playlist or segment.
    private func file(
        _ known: KnownTarget, _ type: MediaType, _ version: PublishedVersion, _ asset: AssetID, _ mode: PlaybackMode,
        _ answering: inout Answering, _ progress: inout PlaybackProgress
    ) -> PlaybackStep {
        let target = known.target
        // A still is the picture itself, not ciphertext: a gated asset's go only to viewers the gate admits.
        var privateStill = false
        if type == .jpeg || type == .webVTT {
            let (step, gated) = gateCheck(token: target.token, asset, mode, &answering, &progress)
            if let step { return step }
            privateStill = gated
        }
        if progress.partial != nil || mode == .mayLoad, let direct = partialRead(known, type, in: version, request: answering.request) {
            switch found(progress.partial, direct, mode, &progress, PlaybackLoad.partial) {
            case .value(let partial?): return finish(partialResponse(partial, known: known, type: type, version: version), &answering, &progress)
            case .value(nil): return finish(Self.notFound, &answering, &progress)
            case .failed(let error): return failed(error, &answering, &progress)
            case .step(let step): return step
            }
        }
        let object: CachedObject
        switch found(progress.object, cachedObject(known, type, in: version, mode: mode), mode, &progress, PlaybackLoad.object) {
        case .value(let cached?):
            object = cached
            // Found in L1 by this call, not loaded for it: a hit.
            answering.l1Hit = progress.object == nil
        case .value(nil): return finish(Self.notFound, &answering, &progress)
        case .failed(let error): return failed(error, &answering, &progress)
        case .step(let step): return step
        }
        // A viewer's token rides on a gated asset's playlists: they are tailored to the viewer.
        if type == .playlist, let gate, let token = target.token {
            switch found(progress.policy, gate.policies.policy(of: asset.rawValue), mode, &progress, PlaybackLoad.policy) {
            case .value(nil): break
            case .value(.some):
                guard PlaybackToken.isWellFormed(token) else { return finish(Self.malformedToken, &answering, &progress) }
                return finish(tailored(object, type: type, token: token, method: answering.request.method), &answering, &progress)
            case .failed: return finish(Self.gateUnavailable, &answering, &progress)
            case .step(let step): return step
            }
        }
        if type == .transportStream, let segment = known.segment { answering.readAhead = (version, segment) }
        let versioned = target.version != nil
        if privateStill {
            if type == .webVTT, let token = target.token {
                guard PlaybackToken.isWellFormed(token) else { return finish(Self.malformedToken, &answering, &progress) }
                return finish(tailored(object, type: type, token: token, method: answering.request.method), &answering, &progress)
            }
            var response = fileResponse(object, type: type, versioned: versioned, request: answering.request)
            response.headers[.cacheControl] = "private, no-store"
            return finish(response, &answering, &progress)
        }
        if progress.encodedHeads, answering.request.headerFields.isEmpty, !everyAnswerVariesByOrigin {
            // No range, validators, encodings or origin asked about: the object's own encoded head.
            let head = versioned ? object.wholeHeads.versioned : object.wholeHeads.unversioned
            let body = answering.request.method == .head ? nil : object.body
            answering.encodedBodyBytes = body?.readableBytes ?? 0
            return finish(PlaybackResponse(status: .ok, headers: [:], body: body, encodedHead: head, lendsBody: object.lendsBody), &answering, &progress)
        }
        return finish(fileResponse(object, type: type, versioned: versioned, request: answering.request), &answering, &progress)
    }

    /// A content key: the gate's decision (or, with no gate, a refusal for a gated asset), then
    /// the key unwrapped.
    private func key(
        _ keyID: String, token: String?, _ version: PublishedVersion, _ asset: AssetID, _ mode: PlaybackMode, _ answering: inout Answering, _ progress: inout PlaybackProgress
    ) -> PlaybackStep {
        let relative = "keys/\(keyID).key"
        guard Self.isKeyID(keyID), StorePath.isSafeRelative(relative) else { return finish(Self.notFound, &answering, &progress) }
        if let step = gateCheck(token: token, asset, mode, &answering, &progress).step { return step }
        switch found(progress.key, contentKey(version, keyID: keyID, relative: relative), mode, &progress, PlaybackLoad.key) {
        case .value(.key(let bytes)): return finish(Self.keyResponse(bytes, method: answering.request.method), &answering, &progress)
        case .value(.missing): return finish(Self.notFound, &answering, &progress)
        case .value(.unavailable): return finish(Self.keyUnavailable(keyID), &answering, &progress)
        case .failed(let error): return failed(error, &answering, &progress)
        case .step(let step): return step
        }
    }

    /// What the gate says of a request for something only a viewer it admits may have (a key, a
    /// gated asset's stills): `.step` when it refused, failed or must load first; else whether
    /// the asset is gated at all.
    private func gateCheck(
        token: String?, _ asset: AssetID, _ mode: PlaybackMode, _ answering: inout Answering, _ progress: inout PlaybackProgress
    ) -> (step: PlaybackStep?, gated: Bool) {
        guard let policies else { return (nil, false) }
        let policy: AccessPolicy?
        switch found(progress.policy, policies.policy(of: asset.rawValue), mode, &progress, PlaybackLoad.policy) {
        case .value(let known): policy = known
        case .failed: return (finish(Self.gateUnavailable, &answering, &progress), true)
        case .step(let step): return (step, true)
        }
        guard let policy else { return (nil, false) }
        guard let gate else { return (finish(refusalWithoutGate(asset), &answering, &progress), true) }
        let lookup = gate.authorize(answering.request.headerFields, queryToken: token, asset: asset.rawValue, policy: policy)
        switch found(progress.authorization, lookup, mode, &progress, PlaybackLoad.authorization) {
        case .value(let decision):
            answering.authorization = decision
            if case .refused(_, let refusal) = decision { return (finish(refusal, &answering, &progress), true) }
            return (nil, true)
        case .failed(let error): return (failed(error, &answering, &progress), true)
        case .step(let step): return (step, true)
        }
    }

    /// One request on its way to an answer: what ``finish(_:_:_:)`` counts and sends with it.
    struct Answering {
        let request: HTTPRequest
        var route: OriginMetrics.Route
        /// The file came from L1 for this answer.
        var l1Hit = false
        var readAhead: (PublishedVersion, NumberedSegment)?
        var authorization: KeyAuthorization?
        /// With an encoded head: the body bytes (the fields carry no `Content-Length` to read).
        var encodedBodyBytes: Int?
        /// The target, once it named a published asset (what viewer analytics count).
        var viewing: KnownTarget?
    }

    /// What a lookup gave: the value, a failed load, or the step to take first.
    private enum Found<Value> {
        case value(Value)
        case failed(any Error)
        case step(PlaybackStep)
    }

    /// The value from an earlier load, else from memory; else the load to run (in `.mayLoad`, after
    /// the rate limit, which may answer instead).
    private func found<Value>(
        _ loaded: Result<Value, any Error>?, _ lookup: @autoclosure () -> Lookup<Value>, _ mode: PlaybackMode, _ progress: inout PlaybackProgress,
        _ make: (@escaping @Sendable () async throws -> Value) -> PlaybackLoad
    ) -> Found<Value> {
        if let loaded {
            switch loaded {
            case .success(let value): return .value(value)
            case .failure(let error): return .failed(error)
            }
        }
        switch lookup() {
        case .known(let value):
            return .value(value)
        case .load(let work):
            if mode == .mayLoad, !progress.admitted {
                progress.admitted = true
                if let limited = tooManyRequests(progress.client) { return .step(.answer(limited)) }
            }
            return .step(.load(make(work)))
        }
    }

    /// The answer, once: the rate limit if not taken yet, then read-ahead, counts, CORS and metrics.
    private func finish(_ response: PlaybackResponse, _ answering: inout Answering, _ progress: inout PlaybackProgress) -> PlaybackStep {
        var response = response
        var bodyBytes = answering.encodedBodyBytes
        if !progress.admitted {
            progress.admitted = true
            if let limited = tooManyRequests(progress.client) {
                response = limited
                bodyBytes = nil
                answering.l1Hit = false
                answering.readAhead = nil
                answering.authorization = nil
            }
        }
        if answering.l1Hit { counted(l1Hit: true) }
        if let (version, segment) = answering.readAhead { warm(after: version, segment, client: progress.client.address) }
        if let authorization = answering.authorization { gate?.count(authorization) }
        applyCORS(to: &response.headers, answering.request.headerFields)
        let sent = answering.request.method == .head ? 0 : (bodyBytes ?? response.headers[.contentLength].flatMap { Int($0) } ?? 0)
        metrics.request(answering.route, status: response.status.code, nanoseconds: DispatchTime.now().uptimeNanoseconds &- progress.started, bodyBytes: sent)
        if let analytics, let known = answering.viewing, let asset = known.asset {
            analytics.record(
                asset: asset.rawValue, route: answering.route, rendition: known.segment.map { Substring($0.folder) }, status: response.status.code,
                bytes: sent, viewer: .init(token: known.target.token, address: progress.client.address, userAgent: answering.request.headerFields[.userAgent])
            )
        }
        return .answer(response)
    }

    /// A load failed (the store or Redis could not be read): 500, named in the log, never cached.
    private func failed(_ error: any Error, _ answering: inout Answering, _ progress: inout PlaybackProgress) -> PlaybackStep {
        logger.error("playback request failed", metadata: ["path": "\(answering.request.path ?? "")", "error": "\(error)"])
        var response = PlaybackResponse.plain(.internalServerError, "the origin could not read this object\n")
        response.headers[.cacheControl] = "no-store"
        return finish(response, &answering, &progress)
    }
}
