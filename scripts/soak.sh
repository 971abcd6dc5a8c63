#!/usr/bin/env bash
# The soak and fault program (tests/src/bin/soak/), prepared and run:
# a dedicated PostgreSQL 15 cluster `soak` on 127.0.0.1:5439 (so stopping it
# does not disturb anything else on the machine), the local Node image, the
# release binaries. s3s-fs is started by the program itself.
#
#   scripts/soak.sh                  # 10 minutes, writes docs/reliability.md
#   SOAK_SECONDS=120 SOAK_NO_WRITE=1 scripts/soak.sh
#
# Needs root (pg_createcluster / pg_ctlcluster) and Docker. Not part of the
# test command: it is a measurement, like scripts' benchmark.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
PG_VERSION="${PG_VERSION:-15}"
PG_PORT="${SOAK_PG_PORT:-5439}"
cluster=soak

die() { echo "soak: $*" >&2; exit 1; }

command -v pg_createcluster >/dev/null || die "pg_createcluster not found: install postgresql-$PG_VERSION"
if ! pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$cluster" '$1 == v && $2 == c { f = 1 } END { exit !f }'; then
    pg_createcluster "$PG_VERSION" "$cluster" -p "$PG_PORT" >/dev/null || die "pg_createcluster failed"
fi
pg_ctlcluster "$PG_VERSION" "$cluster" start 2>/dev/null || true
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 1; done
pg_isready -q -h 127.0.0.1 -p "$PG_PORT" || die "the soak cluster does not answer on 127.0.0.1:$PG_PORT"
su postgres -c "psql -q -X -p $PG_PORT -d postgres" <<'SQL' || die "creating the soak role failed"
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'faas') THEN
        CREATE ROLE faas LOGIN CREATEDB PASSWORD 'faas';
    END IF;
END
$$;
SQL

if ! command -v s3s-fs >/dev/null && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" ]; then
    cargo install s3s-fs --version 0.14.1 --features binary --locked
fi
docker image inspect lowcode-faas/node:local >/dev/null 2>&1 || bash scripts/build-node-image.sh
cargo build --release -p faas-server -p faas-worker -p faas-tests --bins

export SOAK_PG_DSN="postgres://faas:faas@127.0.0.1:$PG_PORT/postgres"
export SOAK_PG_STOP="pg_ctlcluster $PG_VERSION $cluster stop -m fast"
export SOAK_PG_START="pg_ctlcluster $PG_VERSION $cluster start"
exec "${CARGO_TARGET_DIR:-target}/release/soak"
