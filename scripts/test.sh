#!/usr/bin/env bash
# The project's test command. From the repository root:
#
#   ./scripts/test.sh            go vet, go test -race, then every fuzz target briefly
#   ./scripts/test.sh CMD ARGS   run CMD instead (e.g. a benchmark) with MinIO up
#
# It installs MinIO into GOBIN when missing, starts it on 127.0.0.1 on a free
# port with a temporary data directory and generated credentials, exports
# COMPACT_HOST_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY and COMPACT_HOST_TEST_MINIO_BIN for the tests, and
# stops it on exit. It also builds the etcd server pinned in scripts/etcd/go.mod into GOBIN when
# missing or of another version, and exports COMPACT_HOST_TEST_ETCD_BIN: tests start a private
# etcd of their own with it (datanode/etcdtest). Any failure makes the script exit non-zero.
#
# Fuzz minimisation is capped at 2s per input: without the cap, each new-coverage input can stall
# the fuzzer for a minute while it shrinks the input.
#
# Knobs: PKGS (default ./...) limits vet/test/fuzz to some packages, e.g.
# PKGS=./storage/... ; FUZZTIME (default 10s) per fuzz target; MINIO_VERSION;
# GUARD=0 skips the performance regression guard at the end (about a
# minute, see BENCH.md; skipped by default when PKGS is set). A load burst on a shared machine can push one
# measurement past its 15% limit, so a failed check is measured once more
# and only a second failure fails the run.
set -euo pipefail

cd "$(dirname "$0")/.."

MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
FUZZTIME="${FUZZTIME:-10s}"
read -r -a pkgs <<<"${PKGS:-./...}"

log() { printf '==> %s\n' "$*" >&2; }

# --- MinIO -------------------------------------------------------------------

gobin="$(go env GOBIN)"
if [[ -z "$gobin" ]]; then
	gobin="$(go env GOPATH)/bin"
fi
minio_bin="$gobin/minio"
if [[ ! -x "$minio_bin" ]]; then
	log "installing MinIO $MINIO_VERSION into $gobin (one-time, takes a few minutes)"
	GOBIN="$gobin" go install "github.com/minio/minio@$MINIO_VERSION"
fi

# --- etcd ---------------------------------------------------------------------

# etcd's own main module has replace directives, so "go install" refuses it;
# scripts/etcd is a module of ours that wraps the pinned server's etcdmain.
etcd_bin="$gobin/etcd"
etcd_version="$(go list -C scripts/etcd -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
if ! "$etcd_bin" --version 2>/dev/null | grep -qx "etcd Version: ${etcd_version#v}"; then
	log "building etcd $etcd_version into $gobin (one-time, about a minute)"
	# Built beside and renamed, so a concurrent run never starts half a binary.
	go build -C scripts/etcd -o "$etcd_bin.$$" .
	mv -f "$etcd_bin.$$" "$etcd_bin"
fi
log "etcd $etcd_version at $etcd_bin (tests start their own)"
export COMPACT_HOST_TEST_ETCD_BIN="$etcd_bin"

minio_dir="$(mktemp -d "${TMPDIR:-/tmp}/compacthost-minio.XXXXXX")"
minio_pid=""
cleanup() {
	if [[ -n "$minio_pid" ]] && kill -0 "$minio_pid" 2>/dev/null; then
		kill "$minio_pid" 2>/dev/null || true
		wait "$minio_pid" 2>/dev/null || true
	fi
	rm -rf "$minio_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

access_key="test$(random_hex 8)"
secret_key="$(random_hex 20)"

# Try a few random ports: another process may grab the port between the
# check and MinIO's bind, in which case MinIO exits and we try the next one.
started=""
for _ in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 40000))
	port_in_use "$port" && continue
	mkdir -p "$minio_dir/data"
	MINIO_ROOT_USER="$access_key" MINIO_ROOT_PASSWORD="$secret_key" MINIO_BROWSER=off \
		"$minio_bin" server --quiet --address "127.0.0.1:$port" "$minio_dir/data" \
		>"$minio_dir/minio.log" 2>&1 &
	minio_pid=$!
	for _ in $(seq 1 150); do # up to ~30 s
		if curl -fsS -o /dev/null "http://127.0.0.1:$port/minio/health/live" 2>/dev/null; then
			started=yes
			break
		fi
		kill -0 "$minio_pid" 2>/dev/null || break
		sleep 0.2
	done
	[[ -n "$started" ]] && break
	kill "$minio_pid" 2>/dev/null || true
	wait "$minio_pid" 2>/dev/null || true
	minio_pid=""
done
if [[ -z "$started" ]]; then
	log "MinIO did not start; its log:"
	cat "$minio_dir/minio.log" >&2 || true
	exit 1
fi
log "MinIO up at http://127.0.0.1:$port (pid $minio_pid, data $minio_dir/data)"

export COMPACT_HOST_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
export COMPACT_HOST_TEST_S3_ACCESS_KEY="$access_key"
export COMPACT_HOST_TEST_S3_SECRET_KEY="$secret_key"
export COMPACT_HOST_TEST_MINIO_BIN="$minio_bin" # for tests that start, kill and restart a MinIO of their own

if [[ $# -gt 0 ]]; then
	log "running: $*"
	"$@"
	exit
fi

# --- vet, tests, fuzz ---------------------------------------------------------

log "go vet ${pkgs[*]}"
go vet "${pkgs[@]}"

log "go test -race -count=1 ${pkgs[*]}"
go test -race -count=1 "${pkgs[@]}"

log "fuzz targets, $FUZZTIME each"
fuzzed=0
fuzzlog="$minio_dir/fuzz.log" # removed with the MinIO directory on exit
fuzz_one() { go test -run='^$' -fuzz="^$2\$" -fuzztime="$FUZZTIME" -fuzzminimizetime=2s "$1"; }
while read -r dir pkg; do
	names="$(grep -hoE '^func Fuzz[A-Za-z0-9_]*\(' "$dir"/*_test.go 2>/dev/null | sed -e 's/^func //' -e 's/($//' | sort -u || true)"
	for name in $names; do
		log "fuzz $pkg $name"
		if ! fuzz_one "$pkg" "$name" 2>&1 | tee "$fuzzlog"; then
			# Go 1.26's fuzz coordinator can report "context deadline exceeded"
			# when -fuzztime ends mid-call (go.dev/issue/75804, fixed in 1.27):
			# no input failed then. A real finding writes its input; that fails.
			if grep -q 'Failing input written to' "$fuzzlog" || ! grep -q 'context deadline exceeded' "$fuzzlog"; then
				exit 1
			fi
			log "fuzz $name: deadline race at the end of -fuzztime (go.dev/issue/75804), no failing input; running it again"
			fuzz_one "$pkg" "$name"
		fi
		fuzzed=$((fuzzed + 1))
	done
done < <(go list -f '{{.Dir}} {{.ImportPath}}' "${pkgs[@]}")
guard_default=1
[[ -n "${PKGS:-}" ]] && guard_default=0 # a run limited to some packages skips it
if [[ "${GUARD:-$guard_default}" == 1 ]]; then
	log "performance regression guard (host/internal/bench, baseline in testdata/baseline.json)"
	guard() { go test -count=1 -run '^TestRegressionGuard$' ./host/internal/bench -guard -v; }
	if ! guard; then
		log "the guard failed once; measuring again to tell a regression from a load burst"
		guard
	fi
fi
log "all passed ($fuzzed fuzz targets)"
