#!/usr/bin/env bash
# The instruction profile of BENCHMARKS.md's "Operator CPU per updated pod": callgrind counts
# instructions, which repeat whatever else the machine runs, where CPU times spread.
#
#   benches/profile-rollout.sh [PODS] [BINARY] [OUT]   (defaults: 400, target/release/gamedeploy,
#                                                      callgrind.rollout)
#
# As benches/run-rollout.sh: `gamedeploy cluster --kubelet`, the seed GameDeployment with PODS
# replicas (no partition, maxUnavailable 20 %, grace 5 s), `gamedeploy run` in its own process,
# here under `valgrind --tool=callgrind` with instrumentation off. Once every pod is ready,
# instrumentation goes on, the image changes, and it goes off once every pod is updated and
# ready: OUT holds the rollout alone. Prints the operator's reconcile and plan counters and the
# total; read OUT with `callgrind_annotate [--inclusive=yes] OUT`.
#
# Needs kubectl, curl and valgrind on PATH. PORT (default 17443) is where the cluster listens,
# the operator's metrics on PORT + 1. Stops only the two processes it started.
set -euo pipefail
pods=${1:-400}
bin=$(realpath "${2:-target/release/gamedeploy}")
out=${3:-callgrind.rollout}
port=${PORT:-17443}
metrics_port=$((port + 1))
dir=$(mktemp -d)
kc=$dir/kubeconfig
cluster=""
operator=""
cleanup() {
  for pid in $operator $cluster; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

"$bin" cluster --kubelet --listen "127.0.0.1:$port" --kubeconfig-out "$kc" >"$dir/cluster.log" 2>&1 &
cluster=$!
until [ -s "$kc" ] && kubectl --kubeconfig "$kc" get namespaces >/dev/null 2>&1; do sleep 0.5; done
k() { kubectl --kubeconfig "$kc" "$@"; }

sed -e "s/^  replicas: 8/  replicas: $pods/" -e '/^    partition: 3/d' \
  -e 's/^      gracePeriodSeconds: 30/      gracePeriodSeconds: 5/' \
  -e 's/^    type: InplaceUpdate/    type: InplaceUpdate\n    maxUnavailable: 20%/' \
  "$(dirname "$0")/../deploy/examples/inplace-update.yaml" | k apply -f - >/dev/null
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
  "$bin" run --kubeconfig "$kc" --metrics-addr "127.0.0.1:$metrics_port" >"$dir/run.log" 2>&1 &
operator=$!

field() { k get gamedeployment test-gamedeployment -o "jsonpath={.status.$1}"; }
until [ "$(field readyReplicas)" = "$pods" ]; do sleep 2; done
sleep 20
callgrind_control -i on "$operator" >/dev/null
k patch gamedeployment test-gamedeployment --type=json \
  -p='[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"python:latest"}]' >/dev/null
generation=$(k get gamedeployment test-gamedeployment -o 'jsonpath={.metadata.generation}')
until [ "$(field observedGeneration)" = "$generation" ]; do sleep 2; done
until [ "$(field updatedReadyReplicas)" = "$pods" ] && [ "$(field readyReplicas)" = "$pods" ]; do sleep 2; done
callgrind_control -i off "$operator" >/dev/null
echo "counters: $(curl -s "http://127.0.0.1:$metrics_port/metrics" |
  grep -E '^bkbcs_gamedeployment_(reconciles|plans)_total' | tr '\n' ' ')"
kill "$operator"
wait "$operator" 2>/dev/null || true
operator=""
callgrind_annotate "$out" 2>/dev/null | grep 'PROGRAM TOTALS'
