# bench/lib.sh: what the bench scripts share, sourced after `cd` to the repository root.
#
#   bench_fail MESSAGE…        prints "bench/NAME: MESSAGE" on standard error and exits 1
#   bench_debian PKG…          installs the Debian packages that are missing (as root, or with sudo)
#   bench_release_binary       streamgate_binary .build: the one release build every bench uses (the
#                              one `make release` makes), so a fresh clone builds it once
#   streamgate_binary SCRATCH  sets $binary to $STREAMGATE when given, else to the release build in
#                              SCRATCH (a --scratch-path), built when it is missing or older than
#                              Sources/ or Package.swift, after scripts/bootstrap.sh as `make` does
#                              (niced: the machine is shared and the build is not what a bench measures)
#   apt_install PKG…           installs the given Debian packages; fails (returns) instead of exiting,
#                              so a caller can try an alternative
#   bench_python_env           the project's .venv with bench/requirements.txt installed
#
# The caller sets bench_name (e.g. bench/queue), or bench, for the messages; a `fail` of its own
# replaces bench_fail in what it calls here.

bench_fail() { echo "${bench_name:-bench}: $*" >&2; exit 1; }

bench_debian() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  local sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  echo "${bench_name:-bench}: installing ${missing[*]} from Debian" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || bench_fail "apt-get install ${missing[*]} failed"
}

bench_release_binary() { streamgate_binary .build; }

streamgate_binary() {
  local scratch=$1 name=${bench:-${bench_name:-bench}}
  declare -F fail >/dev/null || fail() { bench_fail "$@"; }
  if [[ -n ${STREAMGATE:-} ]]; then
    binary=$STREAMGATE
    [[ -x $binary ]] || fail "STREAMGATE=$binary is not an executable file"
    return 0
  fi
  binary=$PWD/$scratch/release/streamgate
  if [[ ! -x $binary ]] || [[ -n $(find Sources Package.swift -newer "$binary" -print -quit) ]]; then
    echo "$name: building $binary (release, scratch path $scratch)" >&2
    export PATH=/opt/swift/usr/bin:$PATH
    command -v swift >/dev/null 2>&1 || fail "swift is not on PATH (nor in /opt/swift/usr/bin); set STREAMGATE=/path/to/streamgate"
    scripts/bootstrap.sh >&2 || fail "scripts/bootstrap.sh failed (the packages the build links)"
    nice -n 10 swift build -c release --product streamgate --scratch-path "$scratch" >&2 \
      || fail "swift build -c release --product streamgate --scratch-path $scratch failed (or set STREAMGATE=/path/to/streamgate)"
    # A build with nothing to do (sources touched, not changed: a checkout, a rebase) leaves the
    # binary's time alone, and every later run would build again.
    [[ -x $binary ]] && touch "$binary"
  fi
  [[ -x $binary ]] || fail "$binary is missing after the build"
}

apt_install() {
  local sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  echo "${bench:-${bench_name:-bench}}: installing $* (apt-get)" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

bench_python_env() {
  scripts/python-env.sh
  local stamp=.venv/.bench-requirements-stamp
  if [[ ! -f $stamp || bench/requirements.txt -nt $stamp ]]; then
    .venv/bin/pip install -q -r bench/requirements.txt && touch "$stamp"
  fi
}
