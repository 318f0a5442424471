#!/usr/bin/env bash
# Fuzzes a running otpgate with schemathesis against the OpenAPI document it serves
# (GET /openapi.json) and fails on any server error or any answer the document does
# not describe (status code, Content-Type, body schema). See README.md beside this file.
#
#   tools/schemathesis/run.sh                          # what CI runs
#   tools/schemathesis/run.sh --seed 7 --examples 200  # another seed, more cases
#   tools/schemathesis/run.sh -- --continue-on-failure # after --: to `schemathesis run`
#
# Installs what it needs itself: a virtualenv in ~/.cache/otpgate/schemathesis-venv
# with requirements.txt, reinstalled when that file changes. Builds the debug binary (cargo build), starts `otpgate serve` on a scratch
# SQLite database and a free loopback port, provisions fixtures/environment's users,
# TwoFactorConfigurations and brands, runs schemathesis, and stops the gateway.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="${XDG_CACHE_HOME:-$HOME/.cache}/otpgate/schemathesis-venv"
say() { echo "schemathesis: $*"; }

seed=1
examples=75
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed=$2; shift 2 ;;
    --examples) examples=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--seed N] [--examples N] [-- SCHEMATHESIS-RUN-OPTIONS…]" >&2; exit 2 ;;
  esac
done

# The gateway reads OTPGATE_* variables as settings: only this run's file counts.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^OTPGATE_' || true)

# The virtualenv, reused while requirements.txt is unchanged.
stamp="$venv/.otpgate-requirements"
if ! [ -x "$venv/bin/schemathesis" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
  say "installing $here/requirements.txt into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi

(cd "$root" && cargo build --locked --quiet)
bin="$root/target/debug/otpgate"

work=$(mktemp -d "${TMPDIR:-/tmp}/otpgate-schemathesis.XXXXXX")
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"

# fixtures/environment/otpgate.toml (the organisation, the legacy answers to unknown
# users, the file sink), on this run's database and port, with every limit that would
# turn a long run of requests from one address into 429s or lockouts lifted: the cases
# are about the shape of answers, not about abuse.
cat >"$work/otpgate.toml" <<EOF
bind = "127.0.0.1:$port"
database_url = "sqlite://$work/otpgate.db"
workers = 2

[secrets]
otp_key = "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"

[password_hashing]
memory_kib = 8192
iterations = 1

[otp]
resend_cooldown_seconds = 0
max_sends = 1000000

[login]
max_failures = 1000000

[orgs.1]
length = 4
expiry_seconds = 900

[security]
reveal_unknown_users = true

[security.throttle]
exempt = ["127.0.0.0/8", "::1"]

[summit]
instance_label = "new Tenant"

[delivery]
email = ["file"]
sms = ["file"]
file_path = "$work/deliveries.jsonl"
poll_interval_ms = 50
EOF

export OTPGATE_CONFIG="$work/otpgate.toml"
OTPGATE="$bin" "$root/fixtures/environment/prepare.sh" >"$work/prepare.log" 2>&1 \
  || { cat "$work/prepare.log" >&2; say "FAIL: provisioning the scratch database failed"; exit 1; }

NO_COLOR=1 RUST_LOG=${RUST_LOG:-warn} "$bin" serve >"$work/server.log" 2>&1 &
server=$!
up=""
for _ in $(seq 1 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && { up=1; break; }
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
[ -n "$up" ] || { cat "$work/server.log" >&2; say "FAIL: otpgate did not start"; exit 1; }

say "otpgate on $base; $examples examples per operation"
# In the scratch directory, so that hypothesis's and schemathesis's caches (.hypothesis/,
# .schemathesis/) neither land in the work tree nor carry cases from one run to the next.
# The checks: README.md.
status=0
(cd "$work" && SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1 \
"$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$base/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,positive_data_acceptance,negative_data_rejection,xml_response_schema_conformance \
  --max-examples "$examples" \
  --seed "$seed" \
  --workers 1 \
  --no-color \
  "$@") || status=$?

if ! kill -0 "$server" 2>/dev/null; then
  say "FAIL: otpgate exited during the run"
  status=1
fi
if grep -n "panicked" "$work/server.log" >&2; then
  say "FAIL: otpgate panicked (above)"
  status=1
fi
if [ "$status" -ne 0 ]; then
  say "FAIL (exit $status); the gateway's log:"
  tail -n 50 "$work/server.log" >&2
  exit "$status"
fi
say "ok"
