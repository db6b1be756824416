#!/usr/bin/env bash
# Fuzzes StreamGate's parsers of untrusted bytes with libFuzzer, one harness after the other.
#
#   fuzz/run.sh [SECONDS] [HARNESS…]      default: 600 s each, every harness (StreamGateFuzz --list)
#
# Builds the fuzz binary into .build-fuzz/ (its own build folder: `swift build` and `make test` never
# see the fuzzer flags), runs each harness over its seeds in fuzz/corpus/<harness>/ with a working
# corpus in .build-fuzz/corpus/<harness>/ (new inputs go there, so the committed seeds stay small),
# and copies every crash, timeout or out-of-memory input into fuzz/crashes/<harness>/. Prints one
# line per harness and ends with `summary harnesses=N execs=… crashes=…`.
#
# FUZZ_NICE (default 10) is the niceness of the build and of the fuzzer: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null || export PATH=/opt/swift/usr/bin:$PATH

seconds=${1:-600}
if (($#)); then shift; fi
build=.build-fuzz
niceness=${FUZZ_NICE:-10}

# -sanitize=fuzzer instruments the Swift code for coverage and links libFuzzer; address catches what
# unsafe pointers get wrong before it becomes a wrong answer. lld lets SwiftPM's entry point
# (main = StreamGateFuzz_main) win over libFuzzer's own main: Main.swift picks the harness, then
# hands over to libFuzzer (fuzz/README.md).
flags=(--build-path "$build" -c debug --product StreamGateFuzz
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
  -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld)
echo "fuzz: nice -n $niceness swift build ${flags[*]}" >&2
nice -n "$niceness" swift build "${flags[@]}" >&2
binary=$(swift build "${flags[@]}" --show-bin-path)/StreamGateFuzz

# Swift's backtracer would take the crash signal from libFuzzer, which then writes no crash file.
export SWIFT_BACKTRACE=enable=no
# The Swift runtime keeps caches for the life of the process; leaks are not what is looked for.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}

list=$("$binary" --list)
if (($#)); then harnesses=("$@"); else mapfile -t harnesses < <(cut -f1 <<<"$list"); fi

total_execs=0
total_crashes=0
for name in "${harnesses[@]}"; do
    max_len=$(awk -F'\t' -v name="$name" '$1 == name { print $2 }' <<<"$list")
    if [[ -z $max_len ]]; then
        echo "fuzz: no harness '$name' (harnesses: $(cut -f1 <<<"$list" | tr '\n' ' '))" >&2
        exit 2
    fi
    seeds=fuzz/corpus/$name
    work=$build/corpus/$name
    artifacts=$build/artifacts/$name
    log=$build/logs/$name.log
    mkdir -p "$seeds" "$work" "$artifacts" "$build/logs"
    rm -f "$artifacts"/*
    command=("$binary" "$name" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="$artifacts/" -print_final_stats=1)
    # Tokens the mutator would not guess: keys, syntax, numbers at the edges of Int and Double
    # (JSON and YAML numbers are read by code the fuzzer cannot see into).
    if [[ -f fuzz/dict/$name.dict ]]; then command+=(-dict="fuzz/dict/$name.dict"); fi
    command+=("$work" "$seeds")
    echo "fuzz: $name: nice -n $niceness ${command[*]}" >&2
    status=0
    nice -n "$niceness" "${command[@]}" >"$log" 2>&1 || status=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    corpus=$(find "$work" -type f | wc -l)
    found=0
    for file in "$artifacts"/*; do
        [[ -e $file ]] || continue
        mkdir -p "fuzz/crashes/$name"
        cp "$file" "fuzz/crashes/$name/"
        found=$((found + 1))
    done
    if ((status != 0 && found == 0)); then
        echo "fuzz: $name: libFuzzer exited with $status and left no input; see $log" >&2
        found=1
    fi
    total_execs=$((total_execs + ${execs:-0}))
    total_crashes=$((total_crashes + found))
    echo "$name: execs=${execs:-?} exec/s=${rate:-?} corpus=$corpus crashes=$found log=$log"
    if ((found)); then
        grep -m 1 -E 'invariant broken|Fatal error|ERROR: (AddressSanitizer|libFuzzer)' "$log" | sed 's/^/    /' || true
    fi
done
echo "summary harnesses=${#harnesses[@]} execs=$total_execs crashes=$total_crashes"
