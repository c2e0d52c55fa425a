#!/usr/bin/env bash
# The newcomer's first command. From the repository root:
#
#   ./scripts/demo.sh
#
# It builds compact-host and the two bundled strategies (plugins/mix, plugins/l0) into ./bin
# (-trimpath, so the .wasm hashes do not depend on where the repository sits),
# writes a demo Milvus collection into ./compact-data (a local directory, the embedded default),
# compacts it with mix.wasm, then applies its L0 deletes with l0.wasm, and says what happened.
# Knobs: SEGMENTS (4), ROWS (10000 per segment), DIM (128), STORE (./compact-data),
# STORAGE_VERSION (0: storage v1; 2: Milvus 2.6's storage v2, read and written as column groups).
set -euo pipefail
cd "$(dirname "$0")/.."

SEGMENTS="${SEGMENTS:-4}"
ROWS="${ROWS:-10000}"
DIM="${DIM:-128}"
STORE="${STORE:-./compact-data}"
STORAGE_VERSION="${STORAGE_VERSION:-0}"

step() { printf '==> %s\n' "$*" >&2; }

step "building compact-host and the bundled strategies into ./bin"
mkdir -p bin
go build -trimpath -o bin/compact-host ./cmd/compact-host
GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o bin/mix.wasm ./plugins/mix
GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o bin/l0.wasm ./plugins/l0

step "writing a demo collection into $STORE ($SEGMENTS segments x $ROWS rows, ${DIM}-dim vectors, storage_version $STORAGE_VERSION)"
rm -rf "$STORE" ./plans
bin/compact-host gen --storage "$STORE" --plans ./plans --segments "$SEGMENTS" --rows "$ROWS" --dim "$DIM" \
	--storage-version "$STORAGE_VERSION"

step "mix compaction with bin/mix.wasm"
bin/compact-host --plugin bin/mix.wasm --plan plans/mix-plan.json --storage "$STORE" --progress none >plans/mix-result.json

step "L0 delete compaction with bin/l0.wasm"
bin/compact-host --plugin bin/l0.wasm --plan plans/l0-plan.json --storage "$STORE" --progress none >plans/l0-result.json
step "done: outputs are in $STORE/files, results in plans/*-result.json; look inside with bin/compact-host inspect"
