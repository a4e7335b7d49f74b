#!/usr/bin/env bash
# The daemons' configuration files through the real binaries: the packaged samples list
# every key (uncommented, each is accepted), --print-config names each value's source,
# and a bad file stops the program with its file and line.
source "$(dirname "$0")/lib.sh"
# Hermetic: not the machine's /etc/steward (the package test may be installing it).
: >"$SCRATCH/empty.toml"
export STEWARD_CONFIG="$SCRATCH/empty.toml"

for program in agent station; do
  sample="$STEWARD_SOURCE/packaging/etc/$program.toml"
  # Every key the program has is in the sample (commented out, with its default).
  keys="$("steward-$program" --print-config)"
  while read -r key; do
    grep -q "^#$key = " "$sample" || fail "$sample does not show the key $key (add it, commented out)"
  done < <(sed -n 's/^#\{0,1\} \{0,1\}\([a-z_]*\) = .*/\1/p' <<<"$keys")
  # Uncommented, the sample is a valid configuration.
  sed 's/^#\([a-z_]* = \)/\1/' "$sample" >"$SCRATCH/$program.toml"
  chmod 600 "$SCRATCH/$program.toml"
  out="$("steward-$program" --config "$SCRATCH/$program.toml" --print-config 2>&1)" ||
    fail "the uncommented $sample is refused: $out"
  expect_contains "$program --print-config" "$out" "data_dir = \"/var/lib/steward"
  expect_contains "$program --print-config" "$out" "# file $SCRATCH/$program.toml:"
done

# Without a configuration, --print-config says what is required.
out="$(steward-agent --config "$SCRATCH/agent.toml.none" --print-config 2>&1)" && fail "a missing --config file accepted"
out="$(steward-agent --print-config)"
expect_contains "--print-config without node" "$out" '# node = ""'
expect_contains "--print-config without node" "$out" "(required, not set)"

# Precedence and sources.
cat >"$SCRATCH/a.toml" <<'TOML'
node = "ship1"
heartbeat = "7s"
[syslog]
udp = ["127.0.0.1:5514"]
TOML
out="$(STEWARD_HEARTBEAT=9s steward-agent --config "$SCRATCH/a.toml" --station central --print-config)"
expect_contains "file value" "$out" 'node = "ship1"                          # file '"$SCRATCH/a.toml:1"
expect_contains "env value" "$out" 'heartbeat = "9s"                        # env STEWARD_HEARTBEAT'
expect_contains "flag value" "$out" 'station = "central"                     # flag --station'
expect_contains "table key" "$out" 'syslog_udp = ["127.0.0.1:5514"]         # file '"$SCRATCH/a.toml:4"

# Errors: exit 2, the file and line.
check_error() {  # check_error TOML EXPECTED-STDERR
  printf '%s\n' "$1" >"$SCRATCH/bad.toml"
  chmod "${MODE:-644}" "$SCRATCH/bad.toml"
  set +e
  err="$(steward-agent --config "$SCRATCH/bad.toml" 2>&1 >/dev/null)"
  rc=$?
  set -e
  expect_eq "exit status for [$1]" "$rc" 2
  expect_eq "error for [$1]" "$err" "$2"
}
F="$SCRATCH/bad.toml"
check_error $'node = "a"\nheartbaet = "5s"' "steward-agent: $F:2: unknown key \"heartbaet\" (did you mean \"heartbeat\"?)"
check_error $'node = "a"\nheartbeat = 5' "steward-agent: $F:2: heartbeat: expected a string (a duration such as \"10s\"), got an integer"
check_error $'node = "a.b"' "steward-agent: $F:1: node: token \"a.b\" contains '.'"
check_error $'node = "a"\nsyslog_udp = ["nowhere"]' "steward-agent: $F:2: syslog_udp: bad listen address \"nowhere\": missing port (want host:port)"
check_error $'node = "a"\nnats = "nats://ship:pw@broker:4222"' "steward-agent: $F:2: nats holds a secret, but group or others may read $F (mode 0644): chmod 600 $F (owned by the user the program runs as)"
set +e
err="$(steward-agent --config "$SCRATCH/missing.toml" 2>&1)"
rc=$?
set -e
expect_eq "missing --config" "$rc/$err" "2/steward-agent: configuration file $SCRATCH/missing.toml: No such file or directory"
echo "configuration checked"
