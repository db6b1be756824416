import Gate
import Ethereum

/// The gate's view of ``OwnershipService``: the chain's answer, cached by the service. Here, beside
/// ``OwnershipChecking``, so everything that builds a ``PlaybackGate`` (the command line, tests)
/// uses the real thing.
public struct ChainOwnership: OwnershipChecking {
    let service: OwnershipService

    public init(service: OwnershipService) {
        self.service = service
    }

    public func verdict(for address: EthereumAddress, policy: AccessPolicy) -> Lookup<OwnershipVerdict> {
        if let cached = service.cachedAnswer(address: address, policy: policy) {
            return .known(cached.granted ? .granted : .denied(cached.reason))
        }
        let service = self.service
        return .load {
            do {
                let answer = try await service.check(address: address, policy: policy)
                return answer.granted ? .granted : .denied(answer.reason)
            } catch {
                return .unavailable("\(error)")
            }
        }
    }
}
