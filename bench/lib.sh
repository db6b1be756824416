# bench/lib.sh: what the bench scripts share, sourced after `cd` to the repository root.
#
#   bench_fail MESSAGE…        prints "bench/NAME: MESSAGE" on standard error and exits 1
#   bench_debian PKG…          installs the Debian packages that are missing (as root, or with sudo)
#   bench_release_binary       builds .build/release/streamgate when it is missing or older than
#                              Sources/ or Package.swift (niced: the machine is shared); sets $binary
#   bench_python_env           the project's .venv with bench/requirements.txt installed
#
# The caller sets bench_name (e.g. bench/queue) for the messages.

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

bench_release_binary() {
  binary=$PWD/.build/release/streamgate
  if [[ ! -x $binary ]] || [[ -n $(find Sources Package.swift -newer "$binary" -print -quit) ]]; then
    echo "${bench_name:-bench}: building the release binary" >&2
    PATH=/opt/swift/usr/bin:$PATH nice -n 10 swift build -c release --product streamgate >&2 \
      || bench_fail "swift build -c release --product streamgate failed"
  fi
  [[ -x $binary ]] || bench_fail "$binary is missing after the build"
}

bench_python_env() {
  scripts/python-env.sh
  local stamp=.venv/.bench-requirements-stamp
  if [[ ! -f $stamp || bench/requirements.txt -nt $stamp ]]; then
    .venv/bin/pip install -q -r bench/requirements.txt && touch "$stamp"
  fi
}
