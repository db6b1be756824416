#!/usr/bin/env bash
# Installs what StreamGate needs on a Debian 12 machine when it is missing: the FFmpeg and OpenSSL
# development packages the Swift package links, the ffmpeg/ffprobe tools the tests play with, and
# redis-server, which the queue tests start on their own Unix sockets (and, for the failover and
# cluster tests, as replicas, `redis-server --sentinel` sentinels and cluster nodes on loopback
# ports: one binary for all three), and GStreamer, the second HLS player the progressive-publish
# tests start during a transcode, and prometheus for its promtool, which checks and unit-tests
# the alerting and recording rules (deploy/prometheus/check.sh; where systemd runs, the package
# also enables a Prometheus server on :9090: `systemctl disable --now prometheus` if unwanted),
# and linux-perf, whose perf samples a running origin or worker for `streamgate profile`, and
# chromium, the browser the console's tests drive through Playwright (it plays HLS natively).
# Safe to run again: it installs only what is absent.
set -euo pipefail

packages=(
  pkg-config
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libssl-dev zlib1g-dev libsecp256k1-dev
  libhiredis-dev redis-server
  ffmpeg curl
  python3 python3-venv
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav
  prometheus
  linux-perf
  chromium
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}" >&2
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
  if [[ -x /opt/swift/usr/bin/swift ]]; then
    echo "bootstrap: add /opt/swift/usr/bin to PATH" >&2
  else
    echo "bootstrap: Swift 6 is required (swift not found on PATH or in /opt/swift)" >&2
    exit 1
  fi
fi
