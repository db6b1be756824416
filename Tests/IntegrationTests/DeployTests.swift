import Foundation
import Testing

@Suite("deploy/: Kubernetes manifests, KEDA, systemd units, Redis config")
struct DeployTests {
    @Test("every manifest validates (kubernetes-validate from PyPI in .venv) and the units and configs check")
    func validates() async throws {
        let result = try await run("/bin/bash", [packageRoot.appendingPathComponent("deploy/validate.sh").path], timeout: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("deploy: all manifests valid"), "\(result.stdout)")
    }
}
