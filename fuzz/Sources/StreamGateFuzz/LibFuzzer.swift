#if FUZZING
import CLibFuzzer
import Foundation
import FuzzHarnesses

/// The harness libFuzzer calls; set once, before libFuzzer starts.
nonisolated(unsafe) private var selected: Harness?

/// libFuzzer's callback. libFuzzer's own `main`, which the link brings in and SwiftPM's entry point
/// replaces, refers to it by this name, so it must exist even though ``runLibFuzzer`` passes it.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selected!.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// Hands the process to libFuzzer with `arguments` (program name first) and `harness` as the target.
func runLibFuzzer(_ harness: Harness, arguments: [String]) -> Int32 {
    selected = harness
    var argc = Int32(arguments.count)
    // libFuzzer keeps these for the life of the process.
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = .allocate(capacity: arguments.count + 1)
    for (index, argument) in arguments.enumerated() { argv![index] = strdup(argument) }
    argv![arguments.count] = nil
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) }
}
#endif
