#!/usr/bin/env bash
# Runs Tenantry on this machine for development: `make run`.
#
# Without DATABASE_URL, a private PostgreSQL cluster is started (or reused)
# under .dev/postgres on port 55432 by withpg, which runs this script again in
# "services" mode with DATABASE_URL set and stops PostgreSQL after it. With
# DATABASE_URL, that database is used and no cluster is started.
#
# The operator and service tokens and identity's key-encryption key come
# from TENANTRY_OPERATOR_TOKEN, TENANTRY_SERVICE_TOKEN and
# TENANTRY_KEY_ENCRYPTION_KEY, or are generated once into .dev/tokens.env
# (mode 0600) and reused on every later run: identity cannot open the signing
# keys it keeps in the database with another key-encryption key.
#
# Each service is started with its logs on the terminal and waited for until
# its gRPC health check says SERVING: tenant-registry, then the tenant demo is
# created through the registry's API (on the first run; later runs find it),
# then identity. A banner tells where everything listens and how to call it.
# Without TENANTRY_SMTP_ADDR, identity prints the emails it would send, with
# their links, in its log on the terminal. Ctrl-C (SIGINT) or SIGTERM stops
# the services in reverse start order (SIGTERM, then waiting for each), then
# PostgreSQL; a clean stop exits 0.
#
# With TENANTRY_DEV_PLACEMENTS=2 (make run PLACEMENTS=2), a second private
# cluster is started (or reused) under .dev/postgres-second on port 55433,
# also by withpg, and every service gets it as the placement "second"
# (TENANTRY_PLACEMENTS=second=...): a second database for tenant schemas, to
# try placement policy and tenant moves on one machine. Keep it on once
# tenants live there: without it, they have no database.
#
# Environment, all optional:
#   DATABASE_URL                  use this database instead of a private cluster
#   TENANTRY_DEV_PLACEMENTS       1 (default), or 2 for a second placement, "second"
#   TENANTRY_DEV_SECOND_PG_PORT   port of the second placement's cluster (default 55433)
#   TENANTRY_OPERATOR_TOKEN       operator bearer token (default: from .dev/tokens.env)
#   TENANTRY_SERVICE_TOKEN        service bearer token (default: from .dev/tokens.env)
#   TENANTRY_KEY_ENCRYPTION_KEY   identity's key-encryption key (default: from .dev/tokens.env)
#   TENANTRY_COMPONENT_KEY        the registry's key of component tokens (default: from .dev/tokens.env)
#   TENANTRY_NOTES_GRPC_ADDR      the example notes service's gRPC address (default localhost:50053)
#   TENANTRY_REGISTRY_GRPC_ADDR   tenant-registry gRPC address (default localhost:50051)
#   TENANTRY_IDENTITY_GRPC_ADDR   identity gRPC address (default localhost:50052)
#   TENANTRY_SMTP_ADDR            SMTP server for identity's emails (default: print them)
#   TENANTRY_DEV_DIR              state directory (default .dev in the repository)
#   TENANTRY_DEV_PG_PORT          port of the private cluster (default 55432)
#   TENANTRY_BIN_DIR              where the service binaries are (default bin, see make build)
#   TENANTRY_DEV_START_TIMEOUT    seconds a service may take to become healthy (default 60)
#   TENANTRY_DEV_STOP_TIMEOUT     seconds each service gets to stop before SIGKILL (default 30)
# Any other TENANTRY_* variable reaches the services as usual, except
# TENANTRY_REGISTRY_ADDR: identity always uses the registry started here.
set -euo pipefail

if ((BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1))); then
	echo "run-dev: bash 5.1 or newer is needed (this is $BASH_VERSION)" >&2
	exit 1
fi

script=$(realpath "${BASH_SOURCE[0]}")
repo_root=$(cd "$(dirname "$script")/../.." && pwd)
cd "$repo_root" # go build and go tool need the workspace

dev_dir=$(realpath -m "${TENANTRY_DEV_DIR:-$repo_root/.dev}")
bin_dir=$(realpath -m "${TENANTRY_BIN_DIR:-$repo_root/bin}")
pg_port=${TENANTRY_DEV_PG_PORT:-55432}
dev_placements=${TENANTRY_DEV_PLACEMENTS:-1}
second_pg_port=${TENANTRY_DEV_SECOND_PG_PORT:-55433}
# second_placement names the placement of the second cluster.
second_placement=second
start_timeout=${TENANTRY_DEV_START_TIMEOUT:-60}
stop_timeout=${TENANTRY_DEV_STOP_TIMEOUT:-30}
tokens_file=$dev_dir/tokens.env

export TENANTRY_REGISTRY_GRPC_ADDR=${TENANTRY_REGISTRY_GRPC_ADDR:-localhost:50051}
export TENANTRY_IDENTITY_GRPC_ADDR=${TENANTRY_IDENTITY_GRPC_ADDR:-localhost:50052}
export TENANTRY_NOTES_GRPC_ADDR=${TENANTRY_NOTES_GRPC_ADDR:-localhost:50053}

# demo_tenant is the tenant every run makes sure of, for the banner's
# commands; demo_display_name is its display name when created.
demo_tenant=demo
demo_display_name=Demo

log() { echo "run-dev: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# random_token prints 64 hex characters from the kernel's random source.
random_token() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# kept_names are the secrets kept in tokens_file, in its order.
kept_names=(TENANTRY_OPERATOR_TOKEN TENANTRY_SERVICE_TOKEN TENANTRY_KEY_ENCRYPTION_KEY TENANTRY_COMPONENT_KEY)

# load_tokens exports the operator and service tokens and identity's
# key-encryption key: those already in the environment win, then those kept
# in tokens_file; missing ones are generated and kept there, so that they stay
# the same across runs.
load_tokens() {
	local name missing=()
	for name in "${kept_names[@]}"; do
		[[ -n ${!name:-} ]] || missing+=("$name")
	done
	((${#missing[@]} > 0)) || return 0
	local -A kept=()
	local key value generated=()
	if [[ -f $tokens_file ]]; then
		while IFS='=' read -r key value || [[ -n $key ]]; do
			if [[ -n $key ]]; then
				kept[$key]=$value
			fi
		done <"$tokens_file"
	fi
	for name in "${missing[@]}"; do
		if [[ -z ${kept[$name]:-} ]]; then
			kept[$name]=$(random_token)
			generated+=("$name")
		fi
	done
	if ((${#generated[@]} > 0)); then
		mkdir -p "$dev_dir"
		(
			umask 077
			for name in "${kept_names[@]}"; do
				if [[ -n ${kept[$name]:-} ]]; then
					printf '%s=%s\n' "$name" "${kept[$name]}"
				fi
			done >"$tokens_file.tmp"
		)
		mv -f "$tokens_file.tmp" "$tokens_file"
		log "generated ${generated[*]} into $tokens_file"
	fi
	for name in "${missing[@]}"; do
		export "$name=${kept[$name]}"
	done
}

# redact_url drops the password from a database URL, in the user info or in
# a password= parameter.
redact_url() {
	sed -E -e 's#^([a-z]+://[^:/@]*):[^@/]*@#\1@#' -e 's#([?&])password=[^&]*#\1password=xxxxx#' <<<"$1"
}

# dial_addr turns a listen address into one to dial: ":50051" → "localhost:50051".
dial_addr() {
	case $1 in
	:*) echo "localhost$1" ;;
	*) echo "$1" ;;
	esac
}

# ---- services mode: runs with DATABASE_URL set, under withpg or not --------

service_names=() # running services, in start order
service_pids=()
listening=() # banner lines: where each service listens
stopping=""  # set by a signal: stop everything
grpcurl=""   # grpcurl binary, for health checks
reaped_status=0 # set by reap

on_signal() { stopping=1; }

# start_service NAME GRPC_ADDR COMMAND [ARGS...] starts a service in the
# background with its logs on the terminal and waits until its gRPC health
# check says SERVING. Services start in order: later ones may use earlier ones.
start_service() {
	local name=$1 addr=$2 pid
	shift 2
	[[ -x $1 ]] || fail 1 "$1 not found: run 'make build' (or set TENANTRY_BIN_DIR)"
	log "starting $name (gRPC on $addr)"
	"$@" &
	pid=$!
	service_names+=("$name")
	service_pids+=("$pid")
	listening+=("$(printf '%-16s gRPC  %-22s (pid %d)' "$name" "$(dial_addr "$addr")" "$pid")")
	wait_healthy "$name" "$pid" "$(dial_addr "$addr")"
}

# wait_healthy NAME PID ADDR polls grpc.health.v1 on ADDR until it answers
# SERVING. It stops everything when the service dies, the deadline passes or
# a signal comes.
wait_healthy() {
	local name=$1 pid=$2 addr=$3 deadline=$((SECONDS + start_timeout))
	while :; do
		if [[ -n $stopping ]]; then
			fail 0 "interrupted while $name was starting"
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			reap "$pid"
			forget_service "$pid"
			fail $((reaped_status > 0 ? reaped_status : 1)) "$name exited with status $reaped_status before it was healthy"
		fi
		if "$grpcurl" -plaintext -max-time 2 "$addr" grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"'; then
			return 0
		fi
		if ((SECONDS >= deadline)); then
			fail 1 "$name is not healthy after ${start_timeout}s (grpc.health.v1 on $addr)"
		fi
		sleep 0.2
	done
}

# ensure_demo_tenant creates the tenant demo through the registry's API with
# the operator token, on the first run; on later runs the registry answers
# AlreadyExists, which is fine. Any other failure stops everything: the
# banner's identity commands need the tenant.
ensure_demo_tenant() {
	local addr out status=0
	addr=$(dial_addr "$TENANTRY_REGISTRY_GRPC_ADDR")
	# The token is expanded by grpcurl from its environment, so that it does
	# not show in the process list.
	# shellcheck disable=SC2016
	out=$("$grpcurl" -plaintext -max-time "$start_timeout" \
		-expand-headers -H 'authorization: Bearer ${TENANTRY_OPERATOR_TOKEN}' \
		-d "{\"tenant_id\":\"$demo_tenant\",\"tenant\":{\"display_name\":\"$demo_display_name\"}}" \
		"$addr" tenantry.registry.v1.TenantService/CreateTenant 2>&1) || status=$?
	if [[ -n $stopping ]]; then
		fail 0 "interrupted while creating the tenant $demo_tenant"
	fi
	if ((status == 0)); then
		log "created the tenant $demo_tenant (display name \"$demo_display_name\")"
		return 0
	fi
	if grep -q '^ *Code: AlreadyExists$' <<<"$out"; then
		return 0
	fi
	fail 1 "cannot create the tenant $demo_tenant through tenant-registry at $addr (grpcurl exit status $status):
$out"
}

# start_identity starts identity with the token of its component, identity
# (from the registry, as an operator): identity registers its tables with
# the registry like any product service, and asks it to migrate the tenants
# behind on them (demo, on the first run).
start_identity() {
	local token
	token=$("$bin_dir/tenantry" components credential identity) || fail 1 "cannot get the identity component's token from tenant-registry"
	TENANTRY_COMPONENT_TOKEN=$token start_service identity "$TENANTRY_IDENTITY_GRPC_ADDR" "$bin_dir/identity"
}

# start_notes starts the example product service with its component token
# (from the registry, as an operator), then gives tenants that existed
# before it registered its component (demo, on the first run) its tables
# with a fleet migration: a no-op on later runs.
start_notes() {
	local token
	token=$("$bin_dir/tenantry" components credential notes) || fail 1 "cannot get the notes component's token from tenant-registry"
	TENANTRY_COMPONENT_TOKEN=$token TENANTRY_IDENTITY_ADDR=$(dial_addr "$TENANTRY_IDENTITY_GRPC_ADDR") \
		start_service notes "$TENANTRY_NOTES_GRPC_ADDR" "$bin_dir/notes"
	"$bin_dir/tenantry" migrate --component notes >&2 || fail 1 "the fleet migration of the notes component failed"
}

# forget_service PID drops a service that has exited and been waited for.
forget_service() {
	local i
	for i in "${!service_pids[@]}"; do
		if [[ ${service_pids[i]} == "$1" ]]; then
			unset "service_pids[i]" "service_names[i]"
		fi
	done
	service_pids=("${service_pids[@]}") service_names=("${service_names[@]}")
}

# fail STATUS MESSAGE stops the services and exits with STATUS.
fail() {
	log "$2"
	stop_services || true
	exit "$1"
}

# stop_services stops the running services in reverse start order, so that
# none loses a service it uses while it stops: SIGTERM, then waiting for it,
# with SIGKILL after stop_timeout. It returns non-zero when a service did not
# stop cleanly.
stop_services() {
	((${#service_pids[@]} > 0)) || return 0
	local i failed=0 deadline pid name order=() names=()
	for ((i = ${#service_pids[@]} - 1; i >= 0; i--)); do
		order+=("$i") names+=("${service_names[i]}")
	done
	log "stopping ${names[*]}"
	for i in "${order[@]}"; do
		pid=${service_pids[i]} name=${service_names[i]}
		kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + stop_timeout))
		while kill -0 "$pid" 2>/dev/null; do
			if ((SECONDS >= deadline)); then
				log "$name still runs after ${stop_timeout}s: killing it"
				kill -KILL "$pid" 2>/dev/null || true
				failed=1
				break
			fi
			sleep 0.1
		done
		reap "$pid"
		# 0 is a graceful exit; 130 and 143 mean that SIGINT or SIGTERM ended a
		# service that does not catch them, a stop all the same; -1 is a stop
		# whose status bash lost (see reap).
		if ((reaped_status > 0 && reaped_status != 130 && reaped_status != 143)); then
			log "$name exited with status $reaped_status"
			failed=1
		fi
	done
	service_pids=() service_names=()
	return "$failed"
}

# reap PID waits for a service to exit and puts its status in reaped_status,
# or -1 when bash has lost it (below). A signal interrupts wait, with a status
# above 128, while the service still runs: then it waits again.
reap() {
	local status
	while :; do
		status=0
		wait "$1" 2>/dev/null || status=$?
		if ((status > 128)) && kill -0 "$1" 2>/dev/null; then
			continue
		fi
		# When a service's exit races with a signal to this script (Ctrl-C
		# reaches both), bash 5.2 may lose the status: wait then says -1 or
		# 127 ("not a child") for a process that is gone.
		if ((status < 0 || status == 127)); then
			status=-1
		fi
		reaped_status=$status
		return 0
	done
}

# add_http NAME ADDR HOST_PREFIX adds a banner line for a service's REST
# gateway; HOST_PREFIX puts a tenant in front of the host (demo.localhost).
add_http() {
	[[ -n $2 ]] || return 0
	local addr
	addr=$(dial_addr "$2")
	listening+=("$(printf '%-16s HTTP  http://%s%s' "$1" "$3" "$addr")")
}

# print_banner tells where everything listens and how to call it.
print_banner() {
	local addr identity_addr notes_addr database tokens_note="" emails
	addr=$(dial_addr "$TENANTRY_REGISTRY_GRPC_ADDR")
	identity_addr=$(dial_addr "$TENANTRY_IDENTITY_GRPC_ADDR")
	notes_addr=$(dial_addr "$TENANTRY_NOTES_GRPC_ADDR")
	database=$(redact_url "$DATABASE_URL")
	if [[ -n $private_cluster ]]; then
		database+="  (private cluster in $private_cluster, kept across runs)"
	fi
	if [[ -f $tokens_file ]] && grep -qxF "TENANTRY_OPERATOR_TOKEN=$TENANTRY_OPERATOR_TOKEN" "$tokens_file"; then
		tokens_note=" (kept in $tokens_file)"
	fi
	if [[ -n ${TENANTRY_SMTP_ADDR:-} ]]; then
		emails="  identity sends them through the SMTP server $TENANTRY_SMTP_ADDR."
	else
		emails="  Not sent: identity prints each email (verification links, password resets,
  invitations) in its log lines on this terminal, above and below this banner:
  look for \"mail not sent\" and the link=... attributes."
	fi
	# Single quotes: the commands show the variables, for pasting.
	# shellcheck disable=SC2016
	local as_operator='-H "authorization: Bearer $TENANTRY_OPERATOR_TOKEN"' \
		as_service='-H "authorization: Bearer $TENANTRY_SERVICE_TOKEN"' \
		as_user='-H "authorization: Bearer $ACCESS_TOKEN"' \
		in_demo="-H 'x-tenant: $demo_tenant'" \
		ann='{"email":"ann@example.com","password":"correct horse battery staple"}'
	local login="grpcurl -plaintext $in_demo -d '$ann' $identity_addr tenantry.identity.v1.AuthService/Login"
	local placements="" second_tour="" cli=$bin_dir/tenantry
	if [[ -n ${TENANTRY_DEV_SECOND_URL:-} ]]; then
		[[ $cli != "$repo_root"/* ]] || cli=${cli#"$repo_root"/}
		placements="
Placements (databases of tenant schemas)
  default  the database above
  $second_placement   $(redact_url "$TENANTRY_DEV_SECOND_URL")  (private cluster in $second_cluster, kept across runs)
"
		second_tour="
  # The placements, and a tenant in the second one (a tenant that names none
  # goes to the open placement with the fewest tenants).
  TENANTRY_REGISTRY_ADDR=$addr $cli placements list
  grpcurl -plaintext $as_operator -d '{\"tenant_id\":\"hooli\",\"tenant\":{\"display_name\":\"Hooli\",\"placement\":\"$second_placement\"}}' $addr tenantry.registry.v1.TenantService/CreateTenant
  grpcurl -plaintext -H 'x-tenant: hooli' -d '$ann' $identity_addr tenantry.identity.v1.AuthService/SignUp
"
	fi
	cat <<BANNER

================================================================================
Tenantry is running. Ctrl-C stops the services, then the database.

Services
$(printf '  %s\n' "${listening[@]}")

Tenants
  $demo_tenant  "$demo_display_name", created by this script on the first run; calls to identity
        name their tenant with -H 'x-tenant: $demo_tenant'

Database
  $database
$placements
Credentials$tokens_note
  operator token  $TENANTRY_OPERATOR_TOKEN  (every method)
  service token   $TENANTRY_SERVICE_TOKEN  (ResolveTenant, WatchTenants)

Emails
$emails

Try it from another terminal (without grpcurl installed, run 'go tool grpcurl'
in this repository instead of 'grpcurl'):

  export TENANTRY_OPERATOR_TOKEN=$TENANTRY_OPERATOR_TOKEN
  export TENANTRY_SERVICE_TOKEN=$TENANTRY_SERVICE_TOKEN
  grpcurl -plaintext $addr list
  grpcurl -plaintext $addr describe tenantry.registry.v1.TenantService
  grpcurl -plaintext $as_operator -d '{"tenant_id":"acme","tenant":{"display_name":"Acme"}}' $addr tenantry.registry.v1.TenantService/CreateTenant
  grpcurl -plaintext $as_service -d '{"host":"acme.localhost"}' $addr tenantry.registry.v1.TenantService/ResolveTenant

  # Accounts of the tenant $demo_tenant (identity): sign up, log in, who am I.
  grpcurl -plaintext $in_demo -d '$ann' $identity_addr tenantry.identity.v1.AuthService/SignUp
  $login
  ACCESS_TOKEN=\$($login | sed -n 's/.*"accessToken": "\(.*\)".*/\1/p')
  grpcurl -plaintext $in_demo $as_user $identity_addr tenantry.identity.v1.AuthService/GetCurrentUser

  # The example product service (notes), in the tenant's own schema as its own role.
  grpcurl -plaintext $in_demo $as_user -d '{"note":{"body":"hello"}}' $notes_addr tenantry.notes.v1.NotesService/CreateNote
  grpcurl -plaintext $in_demo $as_user $notes_addr tenantry.notes.v1.NotesService/ListNotes
$second_tour================================================================================
BANNER
}

# run_services starts every service, prints the banner and supervises them
# until a signal or until one exits on its own. It does not return.
run_services() {
	[[ -n ${DATABASE_URL:-} ]] || die "services mode needs DATABASE_URL"
	trap on_signal INT TERM
	# Resolve (building it on first use) the pinned grpcurl once: 'go tool'
	# on every health probe would start the go command each time.
	grpcurl=$(go tool -n grpcurl) || die "cannot build the pinned grpcurl (go tool -n grpcurl)"

	if [[ -n ${TENANTRY_DEV_SECOND_URL:-} ]]; then
		# Every service reads the same placements (tenant-registry creates
		# schemas there; identity and notes reach them there).
		export TENANTRY_PLACEMENTS="${TENANTRY_PLACEMENTS:+$TENANTRY_PLACEMENTS,}$second_placement=$TENANTRY_DEV_SECOND_URL"
	fi
	start_service tenant-registry "$TENANTRY_REGISTRY_GRPC_ADDR" "$bin_dir/tenant-registry"
	ensure_demo_tenant
	# identity follows the registry started here, whatever the environment says.
	export TENANTRY_REGISTRY_ADDR
	TENANTRY_REGISTRY_ADDR=$(dial_addr "$TENANTRY_REGISTRY_GRPC_ADDR")
	start_identity
	start_notes
	# Their REST gateways (empty addresses turn them off).
	add_http tenant-registry "${TENANTRY_REGISTRY_HTTP_ADDR-localhost:8081}" ""
	add_http identity "${TENANTRY_IDENTITY_HTTP_ADDR-localhost:8080}" "$demo_tenant."
	add_http notes "${TENANTRY_NOTES_HTTP_ADDR-localhost:8083}" "$demo_tenant."
	# A new service is one more line, after the services it depends on, and,
	# for an HTTP address it serves too, a listening+=("...") line.

	print_banner
	local pid i
	while [[ -z $stopping ]]; do
		# Returns when a service exits or a signal comes. Ctrl-C reaches the
		# services too, so after a signal their exit is the stop, not a crash.
		# Which service exited is found with kill -0: wait -n may miss an exit
		# that races with a signal.
		wait -n "${service_pids[@]}" || true
		[[ -z $stopping ]] || break
		for i in "${!service_pids[@]}"; do
			pid=${service_pids[i]}
			if ! kill -0 "$pid" 2>/dev/null; then
				reap "$pid"
				local name=${service_names[i]}
				forget_service "$pid"
				fail $((reaped_status > 0 ? reaped_status : 1)) "$name exited on its own with status $reaped_status"
			fi
		done
	done
	if stop_services; then
		log "stopped cleanly"
		exit 0
	fi
	exit 1
}

# ---- main mode ---------------------------------------------------------------

private_cluster=""
second_cluster=""
if [[ ${1:-} == services ]]; then
	private_cluster=${2:-}
	second_cluster=${3:-}
	run_services
fi
[[ $# -eq 0 ]] || die "usage: $0 (no arguments; the comment at its top lists the environment)"
case $dev_placements in
1 | 2) ;;
*) die "TENANTRY_DEV_PLACEMENTS (make run PLACEMENTS=...) must be 1 or 2, not \"$dev_placements\"" ;;
esac

load_tokens
if [[ -n ${DATABASE_URL:-} ]]; then
	log "using DATABASE_URL $(redact_url "$DATABASE_URL")"
	((dev_placements == 2)) || run_services
fi

# withpg is built rather than run with 'go run': the go command dies of a
# SIGTERM without passing it on, which would leave withpg and the services
# behind. It forwards SIGINT and SIGTERM to this script, then stops PostgreSQL.
withpg=$dev_dir/bin/withpg
mkdir -p "$dev_dir/bin"
go build -o "$withpg" ./services/platform/cmd/withpg
# The command withpg runs: this script in services mode, under a second
# withpg for the second placement's cluster when there is one (each withpg
# forwards the signals to its command, then stops its own cluster).
services=("$script" services)
if ((dev_placements == 2)); then
	second_cluster=$dev_dir/postgres-second
	services=("$withpg" -data "$second_cluster" -port "$second_pg_port" -database tenantry -env TENANTRY_DEV_SECOND_URL -- "${services[@]}")
fi
if [[ -n ${DATABASE_URL:-} ]]; then
	exec "${services[@]}" "" "$second_cluster"
fi
private_cluster=$dev_dir/postgres
exec "$withpg" -data "$private_cluster" -port "$pg_port" -database tenantry -env DATABASE_URL -- "${services[@]}" "$private_cluster" "$second_cluster"
