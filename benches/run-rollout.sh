#!/usr/bin/env bash
# The `gamedeploy run` rows of BENCHMARKS.md, measured as a user runs the operator: its own
# process against `gamedeploy cluster --kubelet` over HTTPS.
#
#   benches/run-rollout.sh [PODS] [BINARY]      (defaults: 2000, target/release/gamedeploy)
#
# 1. Starts the embedded cluster with its simulated kubelet, applies the seed GameDeployment with
#    PODS replicas (no partition, maxUnavailable 20 %, grace 5 s): benches/rollout-cluster.sh.
#    Then starts `gamedeploy run`.
# 2. Once every pod is ready and 30 s have passed: the operator's VmRSS, VmHWM, RssAnon and
#    RssFile from /proc/PID/status (the "`gamedeploy run` memory" row).
# 3. Changes the image and waits until every pod is updated and ready: the operator's CPU time
#    (user + system, from /proc/PID/stat; each is printed too) over the rollout divided by PODS
#    (the "operator CPU per updated pod" row), and its memory again.
#
# 4. Prints the operator's reconcile and plan counters (its /metrics, on PORT + 1) before and
#    after the rollout.
#
# Needs kubectl and curl on PATH. PORT (default 16443) is where the cluster listens. OPERATOR names another
# binary to run the operator with (the operator-only build, `cargo build --release
# --no-default-features`, which has no `cluster`). Stops only the two processes it started.
set -euo pipefail
pods=${1:-2000}
bin=$(realpath "${2:-target/release/gamedeploy}")
operator_bin=$(realpath "${OPERATOR:-$bin}")
port=${PORT:-16443}
metrics_port=$((port + 1))
# shellcheck source=benches/rollout-cluster.sh
source "$(dirname "$0")/rollout-cluster.sh"
"$operator_bin" run --kubeconfig "$kc" --metrics-addr "127.0.0.1:$metrics_port" >"$dir/run.log" 2>&1 &
operator=$!

wait_for() { # wait_for FIELD VALUE
  until [ "$(field "$1")" = "$2" ]; do sleep 1; done
}
memory() {
  grep -E '^(VmRSS|VmHWM|RssAnon|RssFile):' "/proc/$operator/status" | tr -s ' \t' ' ' | paste -sd, -
}
counted() { # the operator's reconciles and plans so far, from its metrics
  curl -s "http://127.0.0.1:$metrics_port/metrics" |
    grep -E '^bkbcs_gamedeployment_(reconciles|plans)_total' | tr '\n' ' '
}
cpu_ticks() { # utime and stime of the operator, in clock ticks
  awk '{ print $14, $15 }' "/proc/$operator/stat"
}

start=$(date +%s)
wait_for readyReplicas "$pods"
echo "all $pods pods ready after $(( $(date +%s) - start )) s"
sleep 30
echo "operator memory, all pods ready: $(memory)"

echo "before the rollout: $(counted)"
read -r user_before system_before < <(cpu_ticks)
start=$(date +%s)
generation=$(image_change)
wait_for observedGeneration "$generation"
until [ "$(field updatedReadyReplicas)" = "$pods" ] && [ "$(field readyReplicas)" = "$pods" ]; do sleep 1; done
read -r user_after system_after < <(cpu_ticks)
hz=$(getconf CLK_TCK)
echo "rollout of $pods pods in $(( $(date +%s) - start )) s"
user=$((user_after - user_before))
system=$((system_after - system_before))
awk -v u="$user" -v s="$system" -v hz="$hz" -v n="$pods" 'BEGIN {
  printf "operator CPU over the rollout: %.2f s (user %.2f s, system %.2f s), %.3f ms per updated pod\n",
    (u + s) / hz, u / hz, s / hz, (u + s) / hz * 1000 / n
}'
echo "after the rollout: $(counted)"
echo "operator memory, after the rollout: $(memory)"
