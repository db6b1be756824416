# Sourced by the bench scripts: what they share to get a StreamGate binary and their tools.
# The caller sets `root` (the repository root) and `bench` (its name, for messages) and has a
# `fail` function; nothing here changes directory or sets shell options.

# apt_install PACKAGE…: installs Debian packages (with sudo when not root).
apt_install() {
  local sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  echo "$bench: installing $* (apt-get)" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# streamgate_binary SCRATCH: sets `binary` to $STREAMGATE when given, else to the release build
# in SCRATCH (a --scratch-path under the root), building it when it is missing or older than
# Sources/ or Package.swift. The build runs at a lower priority: the machine is shared and the
# build is not what a bench measures.
streamgate_binary() {
  local scratch=$1
  if [[ -n ${STREAMGATE:-} ]]; then
    binary=$STREAMGATE
    [[ -x $binary ]] || fail "STREAMGATE=$binary is not an executable file"
    return 0
  fi
  binary=$root/$scratch/release/streamgate
  if [[ ! -x $binary ]] || [[ -n $(cd "$root" && find Sources Package.swift -newer "$binary" -print -quit) ]]; then
    echo "$bench: building $binary (release, scratch path $scratch)" >&2
    export PATH=/opt/swift/usr/bin:$PATH
    command -v swift >/dev/null 2>&1 || fail "swift is not on PATH (nor in /opt/swift/usr/bin); set STREAMGATE=/path/to/streamgate"
    (cd "$root" && nice -n 10 swift build -c release --product streamgate --scratch-path "$scratch" >&2) \
      || fail "swift build -c release --product streamgate --scratch-path $scratch failed (or set STREAMGATE=/path/to/streamgate)"
  fi
  [[ -x $binary ]] || fail "$binary is missing after the build"
}
