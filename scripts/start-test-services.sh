#!/usr/bin/env bash
# Starts the services the db_s3 adapter tests run against, on loopback:
# PostgreSQL 15 (role `faas`/`faas`, database `faas_test`, also over TLS with
# a test CA: LOWCODE_FAAS_TEST_POSTGRES_TLS_DSN / _TLS_CA) and an S3 server
# (s3s-fs 0.14.1, a real S3 protocol implementation over a directory).
#
# Idempotent: running it again reuses what is already up. Prints
# `export LOWCODE_FAAS_TEST_...=...` lines and writes them to
# test-services.env in cargo's target directory ($CARGO_TARGET_DIR, else
# target/), so tests and CI can:
#
#   bash scripts/start-test-services.sh && source "${CARGO_TARGET_DIR:-target}/test-services.env"
#   cargo test -p faas-adapters --features postgres,s3,testkit db_s3
#
# Fails loudly (non-zero exit, message on stderr) when anything does not come up.
# Needs root (or the postgres user's rights) for pg_ctlcluster and psql.
set -euo pipefail

PG_VERSION="${PG_VERSION:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
PG_PORT="${PG_PORT:-5432}"
PG_ROLE=faas
PG_PASSWORD=faas
PG_DATABASE=faas_test
S3S_VERSION=0.14.1
S3_PORT="${S3_PORT:-9000}"
S3_ACCESS_KEY=faas-test-access
S3_SECRET_KEY=faas-test-secret
S3_BUCKET=faas-test
WAIT_SECONDS="${WAIT_SECONDS:-30}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Outside the checkout, so every checkout on this machine finds (and reuses)
# the one s3s-fs this script started, instead of tripping over its port.
state_dir="${LOWCODE_FAAS_TEST_SERVICES_DIR:-${TMPDIR:-/tmp}/lowcode-faas-test-services}"
target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
case "$target_dir" in /*) ;; *) target_dir="$repo_root/$target_dir" ;; esac
env_file="$target_dir/test-services.env"
mkdir -p "$state_dir" "$target_dir"

die() {
    echo "start-test-services: $*" >&2
    exit 1
}

log() {
    echo "start-test-services: $*" >&2
}

# ---- PostgreSQL ----

command -v pg_ctlcluster >/dev/null || die "pg_ctlcluster not found: install postgresql-$PG_VERSION"
if ! pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1 == v && $2 == c && $4 == "online" { found = 1 } END { exit !found }'; then
    log "starting PostgreSQL $PG_VERSION/$PG_CLUSTER"
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start || die "pg_ctlcluster $PG_VERSION $PG_CLUSTER start failed (see /var/log/postgresql/)"
fi
for _ in $(seq 1 "$WAIT_SECONDS"); do
    if pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then break; fi
    sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$PG_PORT" || die "PostgreSQL does not answer on 127.0.0.1:$PG_PORT after ${WAIT_SECONDS}s"

psql_admin() {
    su postgres -c "psql -v ON_ERROR_STOP=1 -q -X -p $PG_PORT $*"
}
# CREATEDB: the tests create one fresh database per test from this role.
psql_admin "-d postgres" <<SQL || die "creating role $PG_ROLE failed"
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE') THEN
        CREATE ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
    ELSE
        ALTER ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
    END IF;
END
\$\$;
SQL
if ! su postgres -c "psql -X -p $PG_PORT -tAc \"SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'\" postgres" | grep -q 1; then
    psql_admin "-d postgres -c 'CREATE DATABASE $PG_DATABASE OWNER $PG_ROLE'" || die "creating database $PG_DATABASE failed"
fi
PGPASSWORD="$PG_PASSWORD" psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_ROLE" -d "$PG_DATABASE" -c 'SELECT 1' >/dev/null \
    || die "cannot log in as $PG_ROLE to $PG_DATABASE over TCP (check pg_hba.conf allows md5/scram on 127.0.0.1)"
log "PostgreSQL ready on 127.0.0.1:$PG_PORT"

# ---- PostgreSQL over TLS (sslmode=require / verify-full tests) ----
# A test CA and a server certificate for 127.0.0.1 and localhost, made once
# (openssl) and kept in the state dir; the cluster serves TLS with them
# (ssl=on, reloaded without a restart). Plain connections keep working.
command -v openssl >/dev/null || die "openssl not found: install openssl"
tls_dir="$state_dir/pg-tls"
pg_ca="$tls_dir/ca.crt"
pg_server_crt="$tls_dir/server.crt"
pg_server_key="$tls_dir/server.key"
if [ ! -s "$pg_ca" ] || [ ! -s "$pg_server_crt" ] || [ ! -s "$pg_server_key" ]; then
    log "creating the test CA and PostgreSQL server certificate in $tls_dir"
    mkdir -p "$tls_dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
        -subj "/CN=lowcode-faas test CA" -keyout "$tls_dir/ca.key" -out "$pg_ca" 2>/dev/null \
        || die "openssl could not create the test CA"
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=127.0.0.1" \
        -keyout "$pg_server_key" -out "$tls_dir/server.csr" 2>/dev/null \
        || die "openssl could not create the server key"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$tls_dir/server.ext"
    openssl x509 -req -in "$tls_dir/server.csr" -CA "$pg_ca" -CAkey "$tls_dir/ca.key" -CAcreateserial \
        -days 3650 -sha256 -extfile "$tls_dir/server.ext" -out "$pg_server_crt" 2>/dev/null \
        || die "openssl could not sign the server certificate"
fi
chmod 755 "$state_dir" "$tls_dir"
chmod 644 "$pg_ca" "$pg_server_crt"
chown postgres:postgres "$pg_server_key" && chmod 600 "$pg_server_key" \
    || die "cannot give $pg_server_key to the postgres user"
psql_admin "-d postgres" >/dev/null <<SQL || die "enabling TLS in PostgreSQL failed"
ALTER SYSTEM SET ssl = on;
ALTER SYSTEM SET ssl_cert_file = '$pg_server_crt';
ALTER SYSTEM SET ssl_key_file = '$pg_server_key';
SELECT pg_reload_conf();
SQL
pg_tls_ok=""
for _ in $(seq 1 "$WAIT_SECONDS"); do
    if PGPASSWORD="$PG_PASSWORD" psql -X -q "host=127.0.0.1 port=$PG_PORT user=$PG_ROLE dbname=$PG_DATABASE sslmode=verify-full sslrootcert=$pg_ca" \
        -c 'SELECT 1' >/dev/null 2>&1; then
        pg_tls_ok=1
        break
    fi
    sleep 1
done
[ -n "$pg_tls_ok" ] || die "PostgreSQL does not serve TLS with $pg_server_crt (sslmode=verify-full failed; see /var/log/postgresql/)"
log "PostgreSQL serves TLS (CA $pg_ca)"

# ---- S3 (s3s-fs) ----

s3s_bin="$(command -v s3s-fs || true)"
if [ -z "$s3s_bin" ] && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" ]; then
    s3s_bin="${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs"
fi
if [ -z "$s3s_bin" ] || ! "$s3s_bin" --version 2>/dev/null | grep -q "$S3S_VERSION"; then
    log "installing s3s-fs $S3S_VERSION (cargo install, takes a minute or two)"
    cargo install s3s-fs --version "$S3S_VERSION" --features binary --locked || die "cargo install s3s-fs failed"
    s3s_bin="${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs"
fi

s3_root="$state_dir/s3-root"
pid_file="$state_dir/s3s-fs.pid"
s3_log="$state_dir/s3s-fs.log"
s3_endpoint="http://127.0.0.1:$S3_PORT"

s3_answers() {
    # Any HTTP status means an HTTP server answers; an unsigned request gets 403.
    local code
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$s3_endpoint/" 2>/dev/null || true)"
    [ -n "$code" ] && [ "$code" != "000" ]
}

running_pid=""
if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    running_pid="$(cat "$pid_file")"
fi
if [ -z "$running_pid" ]; then
    if s3_answers; then
        die "port $S3_PORT is taken by another process; set S3_PORT to a free port"
    fi
    mkdir -p "$s3_root"
    log "starting s3s-fs on $s3_endpoint (root $s3_root)"
    nohup "$s3s_bin" --host 127.0.0.1 --port "$S3_PORT" \
        --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" \
        "$s3_root" >"$s3_log" 2>&1 &
    echo $! >"$pid_file"
fi
# A bucket of s3s-fs is a directory below its root.
mkdir -p "$s3_root/$S3_BUCKET"
for _ in $(seq 1 "$WAIT_SECONDS"); do
    if s3_answers; then break; fi
    kill -0 "$(cat "$pid_file")" 2>/dev/null || die "s3s-fs exited; see $s3_log"
    sleep 1
done
s3_answers || die "s3s-fs does not answer on $s3_endpoint after ${WAIT_SECONDS}s; see $s3_log"
log "S3 (s3s-fs) ready on $s3_endpoint, bucket $S3_BUCKET"

cat >"$env_file" <<ENV
export LOWCODE_FAAS_TEST_POSTGRES_DSN=postgres://$PG_ROLE:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DATABASE
export LOWCODE_FAAS_TEST_POSTGRES_TLS_DSN=postgres://$PG_ROLE:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DATABASE?sslmode=require
export LOWCODE_FAAS_TEST_POSTGRES_TLS_CA=$pg_ca
export LOWCODE_FAAS_TEST_S3_ENDPOINT=$s3_endpoint
export LOWCODE_FAAS_TEST_S3_BUCKET=$S3_BUCKET
export LOWCODE_FAAS_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY
export LOWCODE_FAAS_TEST_S3_SECRET_KEY=$S3_SECRET_KEY
ENV
cat "$env_file"
log "wrote $env_file (source it before cargo test)"
