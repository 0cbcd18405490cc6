#!/usr/bin/env bash
# Makes sure PostgreSQL server binaries (initdb, pg_ctl, postgres) are
# installed, installing Debian's postgresql package when they are not. The
# tests and `make run` start their own clusters from these binaries; the
# system-wide cluster the package creates is left alone.
set -euo pipefail

have_pg() {
	if [[ -n "${TENANTRY_PG_BIN:-}" && -x "${TENANTRY_PG_BIN}/initdb" ]]; then return 0; fi
	compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
	command -v initdb >/dev/null && command -v pg_ctl >/dev/null
}

if have_pg; then
	exit 0
fi

echo "PostgreSQL server binaries not found; installing them with apt-get" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq postgresql >/dev/null
# The package may start a system cluster on 5432; our clusters use their own ports.
have_pg || { echo "PostgreSQL is still missing after apt-get install postgresql" >&2; exit 1; }
