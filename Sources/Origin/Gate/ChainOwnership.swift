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

    public func verdict(for address: EthereumAddress, policy: AccessPolicy) async -> OwnershipVerdict {
        do {
            let answer = try await service.check(address: address, policy: policy)
            return answer.granted ? .granted : .denied(answer.reason)
        } catch {
            return .unavailable(error.description)
        }
    }

    public func cachedVerdict(for address: EthereumAddress, policy: AccessPolicy) -> OwnershipVerdict? {
        service.cachedAnswer(address: address, policy: policy).map { $0.granted ? .granted : .denied($0.reason) }
    }
}
