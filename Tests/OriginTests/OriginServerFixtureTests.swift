import HummingbirdTesting
import NIOConcurrencyHelpers
import TestSupport
import Testing

/// The fixture every live-origin test stands on: whatever the test does, the server is gone after.
@Suite("origin server fixture")
struct OriginServerFixtureTests {
    struct Planned: Error {}

    @Test("an origin whose test throws is shut down: its port accepts no more connections")
    func throwingBodyClosesThePort() async throws {
        let film = try FilmFixture()
        let port = NIOLockedValueBox<Int?>(nil)
        await #expect(throws: Planned.self) {
            try await withOrigin(film.application()) { origin in
                try await origin.client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
                #expect(LoopbackListener.canConnect(port: origin.port))
                port.withLockedValue { $0 = origin.port }
                throw Planned()
            }
        }
        let served = try #require(port.withLockedValue { $0 })
        #expect(!LoopbackListener.canConnect(port: served), "port \(served) still accepts connections")
    }
}
