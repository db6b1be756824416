import Foundation
import Gate
import HTTPTypes
import NIOConcurrencyHelpers
import Store

// How the playback answer refuses gated assets when something is missing: a gate, a usable token,
// or the policy itself.

extension OriginRoutes {
    /// With Redis but no gate (`serve` without `--siwe-domain`), the key of an asset with a policy
    /// is refused, never served: this origin cannot check a viewer, and serving the key would
    /// ungate the asset for anyone who finds this origin. 503, not 403: the viewer may well be
    /// entitled; it is this origin that is misconfigured.
    func refusalWithoutGate(_ asset: AssetID) -> PlaybackResponse {
        let now = DispatchTime.now().uptimeNanoseconds
        // Once a minute is enough to tell the operator; every refused key would flood the log.
        let warn = Self.lastNoGateWarning.withLockedValue { last -> Bool in
            guard last == 0 || now &- last >= 60_000_000_000 else { return false }
            last = now
            return true
        }
        if warn {
            logger.warning("refusing the key of a gated asset: this origin has no gate (serve --siwe-domain …)", metadata: ["asset": "\(asset)"])
        }
        return PlaybackGate.refusalAnswer(.serviceUnavailable, reason: "gate_not_configured", "this asset is gated and this origin has no gate configured")
    }

    static let lastNoGateWarning = NIOLockedValueBox<UInt64>(0)

    /// A gated asset's playlist asked for with a `?token=` that is not a token's shape: refused
    /// rather than tailored (the token would be written into every key URI) or served untailored
    /// (the player would only fail later, at the key, with a less useful answer).
    static var malformedToken: PlaybackResponse {
        PlaybackGate.refusalAnswer(.unauthorized, reason: "malformed", "the playback token is malformed: sign in again for a new one")
    }

    /// The asset's policy cannot be read (Redis is down): no key, no tailored playlist.
    static var gateUnavailable: PlaybackResponse {
        PlaybackGate.refusalAnswer(.serviceUnavailable, reason: "policy_unavailable", "the asset's access policy cannot be read now; try again")
    }
}
