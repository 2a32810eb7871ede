#!/usr/bin/env bash
# The topology of docker-compose.yml without Docker: a 3-node NATS cluster
# with JetStream (nats-server built with `go install`), the WeChat sandbox
# and two workers with the same settings (R3 streams). Ctrl-C stops it all.
# Logs and stores go under $CLUSTER_DIR (default ./data/cluster).
#
#   make cluster                                    # in one terminal
#   NATS_URL=nats://127.0.0.1:4221 go run ./cmd/pathupdate status
#   NATS_URL=nats://127.0.0.1:4221 go run ./cmd/pathupdate publish --file events.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/bin"
dir="${CLUSTER_DIR:-$PWD/data/cluster}"
mkdir -p "$bin" "$dir"

echo "building nats-server and pathupdate into $bin"
GOBIN="$bin" go install github.com/nats-io/nats-server/v2@v2.15.2
go build -o "$bin/pathupdate" ./cmd/pathupdate

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

for i in 1 2 3; do
  routes=""
  for j in 1 2 3; do [ "$j" = "$i" ] || routes="${routes:+$routes,}nats://127.0.0.1:622$j"; done
  "$bin/nats-server" --name "nats-$i" --addr 127.0.0.1 --port "422$i" --http_port "822$i" \
    --cluster_name pathupdate --cluster "nats://127.0.0.1:622$i" --routes "$routes" \
    --jetstream --store_dir "$dir/nats-$i" >"$dir/nats-$i.log" 2>&1 &
  pids+=($!)
done

"$bin/pathupdate" sandbox --addr 127.0.0.1:8086 --accept-any-waybill --system-error-rate 0.05 >"$dir/sandbox.log" 2>&1 &
pids+=($!)

export NATS_URL=nats://127.0.0.1:4221,nats://127.0.0.1:4222,nats://127.0.0.1:4223
export PATHUPDATE_REPLICAS=3 PATHUPDATE_LOG_FORMAT=json
export WECHAT_API_BASE=http://127.0.0.1:8086 WECHAT_APPID=wxsandbox00000000 WECHAT_APPSECRET=sandbox-app-secret
for i in 1 2; do
  PATHUPDATE_HTTP_ADDR="127.0.0.1:946$i" "$bin/pathupdate" worker >"$dir/worker-$i.log" 2>&1 &
  pids+=($!)
done

echo "cluster up: NATS_URL=$NATS_URL"
echo "workers' /metrics on 127.0.0.1:9461 and :9462; sandbox on http://127.0.0.1:8086; logs in $dir"
wait -n "${pids[@]}" || true
echo "a process exited; stopping the rest (see the logs in $dir)"
