import Foundation
import TestSupport
import Testing
import Processes

/// The fixture of every test of `streamgate serve`: whatever the test does, the server is gone after.
@Suite("streamgate serve fixture")
struct ServeFixtureTests {
    struct Planned: Error {}

    @Test("a test that throws still stops streamgate serve: the process has exited and its port is closed")
    func throwingBodyStopsServe() async throws {
        let folder = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder.path + "/store", withIntermediateDirectories: true)
        var seen: (port: Int, process: ChildProcess)?
        await #expect(throws: Planned.self) {
            try await withServe(store: folder.path + "/store") { server in
                #expect(try await server.get("/healthz").status == 200)
                seen = (server.port, try #require(server.process))
                throw Planned()
            }
        }
        let (port, process) = try #require(seen)
        #expect(process.exitStatus != nil, "streamgate serve \(process.pid) still runs")
        #expect(!LoopbackListener.canConnect(port: port), "port \(port) still accepts connections")
    }
}
