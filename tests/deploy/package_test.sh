#!/usr/bin/env bash
# The Debian packages on this machine: scripts/package builds them from this build
# (lintian: no errors, no warnings), apt installs them, the programs, man pages, unit
# files, user, directories and completion are there, an edited conffile survives a
# reinstall, and purge leaves nothing behind. Changes the machine, so it runs only as
# root (CI runs as root on a throwaway machine) and never over an existing install.
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root: installs packages (CI runs it as root)"
for p in steward-agent steward-station; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    skip "$p is installed on this machine already; not touching it"
  fi
done
getent passwd steward >/dev/null && skip "a steward user exists already; not touching it"
for tool in cpack lintian apt-get; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done

"$STEWARD_SOURCE/scripts/package" --no-build --build "$STEWARD_BUILD" --out "$SCRATCH/dist" ||
  fail "scripts/package failed"
version="$(sed -n 's/^project(steward VERSION \([0-9.]*\).*/\1/p' "$STEWARD_SOURCE/CMakeLists.txt")"
ls "$SCRATCH/dist/steward-agent_${version}_"*.deb "$SCRATCH/dist/steward-station_${version}_"*.deb >/dev/null

apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -q "$@"; }
purge() { apt_get purge steward-agent steward-station >/dev/null 2>&1 || true; }
trap 'purge; cleanup' EXIT
apt_get install --no-install-recommends "$SCRATCH"/dist/steward-*.deb >"$SCRATCH/install.log" 2>&1 ||
  { cat "$SCRATCH/install.log"; fail "apt-get install"; }

expect_eq "steward-agent --version" "$(/usr/bin/steward-agent --version)" "steward-agent $version"
expect_eq "steward-station --version" "$(/usr/bin/steward-station --version)" "steward-station $version"
expect_eq "stewardctl --version" "$(/usr/bin/stewardctl --version)" "stewardctl $version"
# Man pages: installed, unless this machine's dpkg leaves man pages out (slim images'
# path-exclude); then read from the package itself.
man_page() {  # man_page SECTION NAME
  if grep -qs 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
    mkdir -p "$SCRATCH/x" && dpkg-deb -x "$SCRATCH"/dist/"$3"_*.deb "$SCRATCH/x"
    MANPAGER=cat MANWIDTH=200 man -l "$SCRATCH/x/usr/share/man/man$1/$2.$1.gz"
  else
    MANPAGER=cat MANWIDTH=200 man "$1" "$2"
  fi
}
for page in "8 steward-agent steward-agent" "8 steward-station steward-station"; do
  text="$(man_page $page 2>/dev/null)" || fail "man $page"
  expect_contains "man $page" "$text" "--print-config"
  expect_contains "man $page" "$text" "READY=1"
done
text="$(man_page 1 stewardctl steward-station 2>/dev/null)" || fail "man stewardctl"
expect_contains "man stewardctl" "$text" "stewardctl nats-config"

# Units, verified where they are installed (now with their binaries and man pages).
for unit in steward-agent steward-station; do
  [ -f "/lib/systemd/system/$unit.service" ] || fail "$unit.service not installed"
  man_check=yes
  grep -qs 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/* && man_check=no
  out="$(systemd-analyze verify --man=$man_check "/lib/systemd/system/$unit.service" 2>&1)" ||
    fail "verify $unit: $out"
  expect_eq "systemd-analyze verify $unit" "$out" ""
  # Disabled until the operator enables it.
  [ ! -e "/etc/systemd/system/multi-user.target.wants/$unit.service" ] || fail "$unit enabled by the package"
done

# The station's user and directories; the configuration files are conffiles.
getent passwd steward >/dev/null || fail "no steward user"
expect_eq "/var/lib/steward-station" "$(stat -c '%U %a' /var/lib/steward-station)" "steward 700"
expect_eq "/var/lib/steward" "$(stat -c '%U %a' /var/lib/steward)" "root 700"
expect_contains "conffiles" "$(dpkg-query -W -f='${Conffiles}' steward-agent)" "/etc/steward/agent.toml"
expect_contains "conffiles" "$(dpkg-query -W -f='${Conffiles}' steward-station)" "/etc/steward/station.toml"
# The installed samples configure nothing: every line is a comment.
out="$(runuser -u steward -- /usr/bin/steward-station --print-config)"
expect_contains "station --print-config as steward" "$out" "(file /etc/steward/station.toml)"
expect_contains "station --print-config as steward" "$out" 'data_dir = "/var/lib/steward-station"'
[[ "$out" != *"# file /etc"* ]] || fail "the installed station.toml sets something: $out"

# bash completion from the option table.
words="$(bash -c 'source /usr/share/bash-completion/completions/stewardctl
  COMP_WORDS=(stewardctl no); COMP_CWORD=1; _stewardctl; echo "${COMPREPLY[*]}"')"
expect_eq "completion of 'stewardctl no'" "$words" "nodes node"
words="$(bash -c 'source /usr/share/bash-completion/completions/stewardctl
  COMP_WORDS=(stewardctl node fo); COMP_CWORD=2; _stewardctl; echo "${COMPREPLY[*]}"')"
expect_eq "completion of 'stewardctl node fo'" "$words" "forget"

# An operator's edit of a conffile survives a reinstall (dpkg keeps it).
echo 'node = "edited"' >>/etc/steward/agent.toml
apt_get install --reinstall "$SCRATCH"/dist/steward-agent_*.deb >"$SCRATCH/reinstall.log" 2>&1 ||
  { cat "$SCRATCH/reinstall.log"; fail "reinstall"; }
expect_contains "agent.toml after reinstall" "$(cat /etc/steward/agent.toml)" 'node = "edited"'
expect_contains "agent --print-config" "$(/usr/bin/steward-agent --print-config)" 'node = "edited"'

# Purge leaves nothing behind, also what the agent writes beside its configuration file:
# the undo record of a change on trial and the note of the last undo (agent/config_host.h).
echo '{"file":"/etc/steward/agent.toml"}' >/etc/steward/agent.toml.undo
echo 'the last change made through the agent was undone at 2026-12-03T18:00:00Z: test' >/etc/steward/agent.toml.undone
apt_get purge steward-agent steward-station >"$SCRATCH/purge.log" 2>&1 || { cat "$SCRATCH/purge.log"; fail "purge"; }
for path in /usr/bin/steward-agent /usr/bin/steward-station /usr/bin/stewardctl /etc/steward \
  /var/lib/steward /var/lib/steward-station /lib/systemd/system/steward-agent.service \
  /lib/systemd/system/steward-station.service /usr/share/man/man8/steward-agent.8.gz \
  /usr/share/bash-completion/completions/stewardctl /usr/share/doc/steward-agent; do
  [ ! -e "$path" ] || fail "$path left after purge"
done
getent passwd steward >/dev/null && fail "user steward left after purge"
getent group steward >/dev/null && fail "group steward left after purge"
echo "packages built, installed, reinstalled and purged"
