import Foundation
import Jobs

// A canary's share of the jobs. Stable workers never ask: they take every job, so a job never
// waits for a canary. A canary reserves its slots in Redis before each read (one small script,
// `Scripts.rolloutTake`), and gives back those it did not start.

extension Worker {
    /// The slots this worker may fill now, out of `wanted`.
    func admission(wanted: Int) async throws -> CanarySlots {
        guard configuration.track == .canary else { return CanarySlots(state: .none, count: wanted, window: nil) }
        let slots = try await queue.takeCanarySlots(wanted: wanted)
        let previous = state.withLockedValue { state -> CanarySlots.State? in
            defer { state.canaryState = slots.state }
            return state.canaryState
        }
        if previous != slots.state {
            switch slots.state {
            case .none: logger.info("no rollout is running: this canary takes jobs like a stable worker")
            case .active: logger.info("a rollout is running: this canary takes only its share of the jobs")
            case .held: logger.warning("the last rollout was aborted: this canary takes no job until the next one starts")
            }
        }
        return slots
    }

    /// Gives back the reserved slots no attempt started in. A Redis failure between reserving and
    /// starting leaves them counted: the canary then stays a little under its share, never over.
    func giveBack(_ slots: CanarySlots, used: Int) async {
        do {
            try await queue.giveBackCanarySlots(slots, used: used)
        } catch {
            logger.warning("cannot give back unused canary slots; the rollout counts them as started", metadata: ["error": "\(error)"])
        }
    }
}

extension StartDecision {
    /// Whether an attempt started (and took a slot).
    var startedAttempt: Bool {
        switch self {
        case .run, .ranInline: true
        case .skip, .dead, .rejected: false
        }
    }
}
