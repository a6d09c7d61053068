#!/usr/bin/env bash
# The MLflow tracking server of rsng sweeps on a Ray head node (started by cluster/gpu.yaml,
# gpu-gcp.yaml and local.yaml; see cluster/README.md).
#
#   mlflow-server.sh start  STORE_DIR [ARTIFACTS]
#                                       start it unless it runs; wait until /health answers; print the URI
#   mlflow-server.sh stop               stop it (its whole process group)
#   mlflow-server.sh status             print the URI if it runs, else exit 1
#
# STORE_DIR holds mlflow.db (sqlite) and artifacts/: put it on storage that outlives the node
# (the shared EFS / Filestore / NFS mount). ARTIFACTS, if given, is the artifact root instead of
# STORE_DIR/artifacts: an s3://BUCKET/PREFIX or gs://BUCKET/PREFIX URI (the server uploads there with
# the node's credentials: IAM role, service account; gpu-s3.yaml, gpu-gcp-gcs.yaml). The server binds to this node's private address (the
# one Ray uses; RSNG_MLFLOW_HOST overrides it), port 5000 (RSNG_MLFLOW_PORT). It has no
# authentication: the port must stay closed to the internet. Pid, log and URI live in
# ~/.rsng-mlflow (RSNG_MLFLOW_STATE), local to the node.
set -euo pipefail

usage="usage: mlflow-server.sh start STORE_DIR [ARTIFACTS] | stop | status"
action=${1:?$usage}
port=${RSNG_MLFLOW_PORT:-5000}
state=${RSNG_MLFLOW_STATE:-$HOME/.rsng-mlflow}
mkdir -p "$state"
pidfile=$state/server.pid

running() {  # alive and not a zombie
    local st
    [[ -s $pidfile ]] && st=$(ps -o stat= -p "$(cat "$pidfile")" 2>/dev/null) && [[ $st != Z* ]]
}

healthy() {
    python - "$1/health" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

case $action in
start)
    store=${2:?$usage}
    artifacts=${3:-}
    if running; then
        echo "mlflow server already running (pid $(cat "$pidfile")): $(cat "$state/uri")"
        exit 0
    fi
    host=${RSNG_MLFLOW_HOST:-$(python -c 'import ray.util; print(ray.util.get_node_ip_address())')}
    mkdir -p "$store"
    [[ -n $artifacts ]] || mkdir -p "$store/artifacts"
    store=$(cd "$store" && pwd)
    artifacts=${artifacts:-$store/artifacts}
    uri="http://$host:$port"
    # setsid: its own session and process group, so it outlives the ssh session that started it
    # and `stop` can end its uvicorn workers with it. GenAI job execution off: rsng does not use it.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid nohup python -m mlflow server \
        --host "$host" --port "$port" --workers 2 \
        --backend-store-uri "sqlite:///$store/mlflow.db" --artifacts-destination "$artifacts" \
        >>"$state/server.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    echo "$uri" >"$state/uri"
    for _ in $(seq 180); do
        if healthy "$uri"; then
            echo "mlflow server running (pid $(cat "$pidfile")), store $store: $uri"
            exit 0
        fi
        if ! running; then
            echo "mlflow server exited during start-up; end of $state/server.log:" >&2
            tail -n 30 "$state/server.log" >&2
            exit 1
        fi
        sleep 1
    done
    echo "mlflow server not healthy after 180 s; see $state/server.log" >&2
    exit 1
    ;;
stop)
    if running; then
        pid=$(cat "$pidfile")
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
        for _ in $(seq 15); do running || break; sleep 1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        echo "mlflow server stopped (pid $pid)"
    fi
    rm -f "$pidfile"
    ;;
status)
    running && cat "$state/uri"
    ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
