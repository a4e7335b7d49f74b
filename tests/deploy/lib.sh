# Shared by the deployment tests and the examples' run scripts: where things are, a
# scratch directory removed on exit, and checks that say what failed.
set -euo pipefail
STEWARD_SOURCE="${STEWARD_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
STEWARD_BUILD="${STEWARD_BUILD:-$STEWARD_SOURCE/build}"
export PATH="$STEWARD_BUILD/agent:$STEWARD_BUILD/station:$STEWARD_BUILD/ctl:$PATH"

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
# expect_eq WHAT ACTUAL EXPECTED
expect_eq() { [ "$2" == "$3" ] || fail "$1: got [$2], expected [$3]"; }
# expect_contains WHAT TEXT NEEDLE
expect_contains() { [[ "$2" == *"$3"* ]] || fail "$1: [$3] not in: $2"; }
# expect_not_contains WHAT TEXT NEEDLE
expect_not_contains() { [[ "$2" != *"$3"* ]] || fail "$1: [$3] in: $2"; }
# wait_for SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds.
wait_for() {
  local limit=$1; shift
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.1
  done
}
# A fresh directory, removed on exit with every process started through `bg`.
SCRATCH="$(mktemp -d /tmp/steward-deploy.XXXXXX)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  # STEWARD_KEEP_SCRATCH=1 keeps it (logs, ledgers) for a look after a failure.
  if [ -n "${STEWARD_KEEP_SCRATCH:-}" ]; then echo "kept $SCRATCH" >&2; else rm -rf "$SCRATCH"; fi
}
trap cleanup EXIT
# bg LOG COMMAND...: starts COMMAND in the background, output to LOG; its pid in BG_PID.
bg() {
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  BG_PID=$!
  PIDS+=("$BG_PID")
}
# free_port: a TCP port on 127.0.0.1 that nothing listens on now. Below the kernel's
# ephemeral range (32768-60999 here): ports the kernel hands out meanwhile, to a server
# on port 0 or to any outgoing connection of a test running beside, never take it.
free_port() {
  local port
  while true; do
    port=$((10000 + RANDOM % 22000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}
