import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Store

/// A player's quality-of-experience report: `POST /v/{asset}/beacon` with a small JSON object,
/// the way Mux Data's SDKs report (and what `navigator.sendBeacon` sends: `text/plain`, so no CORS
/// preflight). `{"event": "startup", "ms": 850}`: `startup` (time to first frame), `rebuffer`
/// (a stall and its length), `error`, `switch` (a rendition change). Unknown fields are ignored.
package struct Beacon: Sendable, Equatable {
    package enum Event: String, Sendable, CaseIterable {
        case startup, rebuffer, error, `switch`
    }

    package var event: Event
    /// How long, for `startup` and `rebuffer`.
    package var milliseconds: Int?

    /// The largest body read: a beacon is a few dozen bytes.
    package static let maximumBytes = 1024
    /// A longer startup or stall is not measured but made up: refused.
    package static let maximumMilliseconds = 3_600_000

    /// The beacon a body says; the error names the field and what is wrong with it.
    package static func parse(_ bytes: [UInt8]) throws(BeaconError) -> Beacon {
        guard bytes.count <= maximumBytes else { throw BeaconError("the beacon is over \(maximumBytes) bytes") }
        struct Wire: Decodable {
            var event: String?
            var ms: Double?
        }
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(bytes))
        } catch DecodingError.typeMismatch(_, let context) where !context.codingPath.isEmpty {
            throw BeaconError("field '\(context.codingPath[0].stringValue)' has the wrong type")
        } catch {
            throw BeaconError("the beacon must be a JSON object")
        }
        guard let name = wire.event else { throw BeaconError("field 'event' is required (startup, rebuffer, error or switch)") }
        guard let event = Event(rawValue: name) else {
            throw BeaconError("field 'event' must be startup, rebuffer, error or switch, got '\(name.prefix(40))'")
        }
        var milliseconds: Int?
        if let value = wire.ms {
            guard value.isFinite, (0...Double(maximumMilliseconds)).contains(value) else {
                throw BeaconError("field 'ms' must be 0…\(maximumMilliseconds) milliseconds")
            }
            milliseconds = Int(value.rounded())
        }
        return Beacon(event: event, milliseconds: milliseconds)
    }
}

package struct BeaconError: Error, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}

extension OriginRoutes {
    /// `POST /v/{asset}/beacon`, when analytics are on: rate-limited like playback, counted only
    /// for an asset that is published (an invented id is a 404 and leaves nothing behind).
    func registerBeacons<Context: RequestContext>(on router: Router<Context>) {
        guard let analytics else { return }
        // Under the playback catch-all (a route of its own would shadow it): only `/v/{asset}/beacon`.
        router.post("/v/**") { request, context in
            let parts = request.uri.path.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 4, parts[3] == "beacon" else { return Self.notFound.response }
            let address = (context as? any RemoteAddressRequestContext)?.remoteAddress
            var response = await self.beacon(request, asset: String(parts[2]), client: self.client(of: address), into: analytics)
            self.applyCORS(to: &response.headers, request.headers)
            response.headers[.cacheControl] = "no-store"
            return response.response
        }
    }

    private func beacon(_ request: Request, asset name: String, client: PlaybackClient, into analytics: PlaybackAnalytics) async -> PlaybackResponse {
        if let limited = tooManyRequests(client) { return limited }
        var request = request
        guard let body = try? await request.collectBody(upTo: Beacon.maximumBytes) else {
            return .plain(.contentTooLarge, "the beacon is over \(Beacon.maximumBytes) bytes\n")
        }
        let beacon: Beacon
        do {
            beacon = try Beacon.parse(Array(buffer: body))
        } catch {
            return .plain(.badRequest, "\(error)\n")
        }
        guard let asset = try? AssetID(name) else { return Self.notFound }
        guard case .some(.some) = try? await directory.resolve(asset, version: nil).value else { return Self.notFound }
        analytics.record(beacon, asset: asset.rawValue)
        return PlaybackResponse(status: .noContent, headers: HTTPFields(), body: nil)
    }
}
