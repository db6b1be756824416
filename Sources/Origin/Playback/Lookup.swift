/// What one of the origin's memories (versions, policies, revocations, ownership, L1, keys) says
/// about a question: the answer it holds now, or the work that finds it out.
///
/// The playback answer (``OriginRoutes/answer(_:mode:progress:)``) asks each memory once per
/// request with the same function, whatever path the request came by: the fast path answers only
/// when every lookup is `.known`, the router runs the `.load`s and asks again.
public enum Lookup<Value: Sendable>: Sendable {
    case known(Value)
    case load(@Sendable () async throws -> Value)

    /// The answer, waiting for the load when memory did not have it.
    public var value: Value {
        get async throws {
            switch self {
            case .known(let value): value
            case .load(let work): try await work()
            }
        }
    }
}
