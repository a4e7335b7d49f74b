# Shared by scripts/demo, scripts/test and scripts/bench: install what is missing
# (Debian 12 packages only), configure and build.
set -euo pipefail

STEWARD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STEWARD_PACKAGES=(build-essential cmake ninja-build pkg-config git
  libnats-dev nats-server libprotobuf-dev protobuf-compiler libabsl-dev libfmt-dev
  libcli11-dev nlohmann-json3-dev
  catch2 libsqlite3-dev sqlite3 libsodium-dev libssl-dev openssl clang bsdutils procps
  libcpp-httplib-dev prometheus chromium nodejs
  libtomlplusplus-dev libsystemd-dev libgoogle-perftools-dev systemd help2man lintian man-db adduser rsyslog
  tzdata)  # schedules: cron lines in a time zone (absl::LoadTimeZone reads zoneinfo)

steward_install_deps() {
  local missing=()
  for p in "${STEWARD_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The dashboard's browser tests: Debian's chromium (in STEWARD_PACKAGES), Node.js with
# npm, and playwright-core from npm (tests/browser/package-lock.json) in
# tests/browser/node_modules.
steward_install_browser_deps() {
  if ! command -v npm >/dev/null; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends npm
  fi
  if [ ! -d "$STEWARD_ROOT/tests/browser/node_modules/playwright-core" ]; then
    (cd "$STEWARD_ROOT/tests/browser" && npm ci --no-audit --no-fund)
  fi
}

# steward_build DIR [cmake args...]
steward_build() {
  local dir="$1"; shift
  cmake -S "$STEWARD_ROOT" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}
