#!/usr/bin/env bash
# systemd-analyze verify passes on both units, with no warning, run against the
# binaries of this build (the unit's ExecStart must exist).
source "$(dirname "$0")/lib.sh"
command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (Debian package systemd)"
for unit in agent station; do
  src="$STEWARD_SOURCE/packaging/systemd/steward-$unit.service"
  sed "s|^ExecStart=/usr/bin/|ExecStart=$STEWARD_BUILD/$unit/|" "$src" >"$SCRATCH/steward-$unit.service"
  grep -q "^ExecStart=$STEWARD_BUILD/$unit/steward-$unit\$" "$SCRATCH/steward-$unit.service" ||
    fail "steward-$unit.service: ExecStart not found"
  # Man pages are checked once installed (package_test.sh); here they are not yet.
  out="$(systemd-analyze verify --man=no "$SCRATCH/steward-$unit.service" 2>&1)" ||
    fail "steward-$unit.service: $out"
  expect_eq "systemd-analyze verify steward-$unit.service" "$out" ""
  for key in Type=notify WatchdogSec= Restart=on-failure StateDirectory=; do
    grep -q "^$key" "$src" || fail "steward-$unit.service has no $key"
  done
done
grep -q '^User=steward$' "$STEWARD_SOURCE/packaging/systemd/steward-station.service" || fail "station not under its own user"
echo "units verified"
