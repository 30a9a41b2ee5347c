#!/usr/bin/env bash
# The instruction profile of BENCHMARKS.md's "Operator CPU per updated pod": callgrind counts
# instructions, which repeat whatever else the machine runs, where CPU times spread.
#
#   benches/profile-rollout.sh [PODS] [BINARY] [OUT]   (defaults: 400, target/release/gamedeploy,
#                                                      callgrind.rollout)
#
# As benches/run-rollout.sh (the cluster: benches/rollout-cluster.sh), with `gamedeploy run`
# under valgrind's callgrind, instrumentation off. Once every pod is ready, instrumentation goes
# on, the image changes, and it goes off once every pod is updated and ready: OUT holds the
# rollout alone. Prints the operator's reconcile and plan counters and the total; read OUT with
# `callgrind_annotate [--inclusive=yes] OUT`.
#
# Needs kubectl, curl and valgrind on PATH. PORT (default 17443) is where the cluster listens,
# the operator's metrics on PORT + 1. Stops only the two processes it started.
set -euo pipefail
pods=${1:-400}
bin=$(realpath "${2:-target/release/gamedeploy}")
out=${3:-callgrind.rollout}
port=${PORT:-17443}
metrics_port=$((port + 1))
# shellcheck source=benches/rollout-cluster.sh
source "$(dirname "$0")/rollout-cluster.sh"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
  "$bin" run --kubeconfig "$kc" --metrics-addr "127.0.0.1:$metrics_port" >"$dir/run.log" 2>&1 &
operator=$!

until [ "$(field readyReplicas)" = "$pods" ]; do sleep 2; done
sleep 20
callgrind_control -i on "$operator" >/dev/null
generation=$(image_change)
until [ "$(field observedGeneration)" = "$generation" ]; do sleep 2; done
until [ "$(field updatedReadyReplicas)" = "$pods" ] && [ "$(field readyReplicas)" = "$pods" ]; do sleep 2; done
callgrind_control -i off "$operator" >/dev/null
echo "counters: $(curl -s "http://127.0.0.1:$metrics_port/metrics" |
  grep -E '^bkbcs_gamedeployment_(reconciles|plans)_total' | tr '\n' ' ')"
kill "$operator"
wait "$operator" 2>/dev/null || true
operator=""
callgrind_annotate "$out" 2>/dev/null | grep 'PROGRAM TOTALS'
