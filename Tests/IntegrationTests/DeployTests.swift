import Foundation
import Testing

// Serialized: both scripts create .venv/ (scripts/python-env.sh) when it is missing.
@Suite("deploy/: Kubernetes manifests, KEDA, systemd units, Redis config, Prometheus rules", .serialized)
struct DeployTests {
    @Test("every manifest validates (kubernetes-validate from PyPI in .venv) and the units and configs check")
    func validates() async throws {
        let result = try await run("/bin/bash", [packageRoot.appendingPathComponent("deploy/validate.sh").path], timeout: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("deploy: all manifests valid"), "\(result.stdout)")
    }

    @Test("the Prometheus rules pass promtool's checks and unit tests; every alert has a runbook, every metric exists (deploy/prometheus/check.sh)")
    func prometheusRules() async throws {
        let result = try await run("/bin/bash", [packageRoot.appendingPathComponent("deploy/prometheus/check.sh").path], timeout: 600)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("prometheus: rules valid"), "\(result.stdout)")
    }
}
