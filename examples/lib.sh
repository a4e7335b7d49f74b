# Shared by the examples' run scripts: the helpers of tests/deploy/lib.sh (a scratch
# directory cleaned up on exit, background processes stopped, checks that say what
# failed), and the binaries of build/ ahead of the installed ones.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/deploy/lib.sh"
command -v nats-server >/dev/null || skip "nats-server is not installed (Debian package nats-server)"
# The programs read no /etc/steward/*.toml the machine may have: an example configures
# everything it runs (--config FILE still names one).
: >"$SCRATCH/no-config.toml"
export STEWARD_CONFIG="$SCRATCH/no-config.toml"
# Print each step as a user would type it.
step() { printf '\n$ %s\n' "$*"; }
