#!/usr/bin/env bash
# SDK conformance: runs the official Mangopay Python and Node SDKs against a
# freshly started diesel-mangopay sandbox and fails if either flow fails.
#
#   SANDBOX_CMD   command that starts the sandbox (default: the `diesel-mangopay sandbox`
#                 built in cargo's target directory, CARGO_TARGET_DIR honoured); it gets
#                 --port, --client-id and --api-key appended
#   SDK_WORK_DIR  where the venv and node_modules live (default: <target directory>/sdk)
#
# Paths are relative to the repository root. Needs python3 (with venv), node and npm,
# and the PyPI and npm registries for the first run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

SDK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target_dir() {
    cargo metadata --format-version 1 --no-deps \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}
if [[ -z "${SANDBOX_CMD:-}" || -z "${SDK_WORK_DIR:-}" ]]; then
    TARGET_DIR="$(target_dir)"
fi
SANDBOX_CMD="${SANDBOX_CMD:-$TARGET_DIR/debug/diesel-mangopay sandbox}"
WORK_DIR="${SDK_WORK_DIR:-$TARGET_DIR/sdk}"
PYTHON_SDK="mangopay4-python-sdk==4.2.0"
NODE_SDK_NAME="mangopay4-nodejs-sdk"
NODE_SDK_VERSION="1.68.0"
CLIENT_ID="sdk-check"
API_KEY="sdk-check-secret-key"

log() { printf '[sdk] %s\n' "$*"; }

mkdir -p "$WORK_DIR"
WORK_DIR="$(cd "$WORK_DIR" && pwd)"

# --- the SDKs (installed once, reused afterwards) ---------------------------
VENV="$WORK_DIR/venv"
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating the venv $VENV"
    python3 -m venv "$VENV"
fi
if [[ "$("$VENV/bin/python" -m pip show mangopay4-python-sdk 2>/dev/null | sed -n 's/^Version: //p')" != "4.2.0" ]]; then
    log "installing $PYTHON_SDK"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PYTHON_SDK"
fi

NODE_PREFIX="$WORK_DIR/node"
NODE_SDK_PACKAGE="$NODE_PREFIX/node_modules/$NODE_SDK_NAME/package.json"
installed_node_sdk=""
if [[ -f "$NODE_SDK_PACKAGE" ]]; then
    installed_node_sdk="$(node -p "require('$NODE_SDK_PACKAGE').version")"
fi
if [[ "$installed_node_sdk" != "$NODE_SDK_VERSION" ]]; then
    log "installing $NODE_SDK_NAME@$NODE_SDK_VERSION"
    npm install --silent --no-audit --no-fund --prefix "$NODE_PREFIX" "$NODE_SDK_NAME@$NODE_SDK_VERSION"
fi

# --- the sandbox --------------------------------------------------------------
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
read -r -a sandbox_cmd <<< "$SANDBOX_CMD"
SANDBOX_LOG="$WORK_DIR/sandbox.log"
log "starting: ${sandbox_cmd[*]} --port $PORT --client-id $CLIENT_ID --api-key ***"
"${sandbox_cmd[@]}" --port "$PORT" --client-id "$CLIENT_ID" --api-key "$API_KEY" >"$SANDBOX_LOG" 2>&1 &
SANDBOX_PID=$!

stop_sandbox() {
    if kill -0 "$SANDBOX_PID" 2>/dev/null; then
        kill "$SANDBOX_PID" 2>/dev/null || true
        wait "$SANDBOX_PID" 2>/dev/null || true
    fi
}
trap stop_sandbox EXIT

for _ in $(seq 1 300); do
    if ! kill -0 "$SANDBOX_PID" 2>/dev/null; then
        log "the sandbox exited before accepting connections:"
        cat "$SANDBOX_LOG" >&2
        exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    log "the sandbox did not answer on port $PORT within 30 s"
    cat "$SANDBOX_LOG" >&2
    exit 1
fi
log "sandbox up: $(head -n 1 "$SANDBOX_LOG")"

export SANDBOX_URL="http://127.0.0.1:$PORT"
export SANDBOX_CLIENT_ID="$CLIENT_ID"
export SANDBOX_API_KEY="$API_KEY"

# --- the flows ----------------------------------------------------------------
# Every python_*.py and node_*.js next to this script is a flow; each runs on the same sandbox.
status=0
results=()
for flow in "$SDK_DIR"/python_*.py; do
    log "python: $flow"
    if "$VENV/bin/python" "$flow"; then
        results+=("$(basename "$flow"): passed")
    else
        results+=("$(basename "$flow"): FAILED")
        status=1
    fi
done
for flow in "$SDK_DIR"/node_*.js; do
    log "node: $flow"
    if NODE_PATH="$NODE_PREFIX/node_modules" node "$flow"; then
        results+=("$(basename "$flow"): passed")
    else
        results+=("$(basename "$flow"): FAILED")
        status=1
    fi
done
for result in "${results[@]}"; do
    log "$result"
done
exit "$status"
