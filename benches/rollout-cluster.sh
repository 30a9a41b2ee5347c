# Sourced by benches/run-rollout.sh and benches/profile-rollout.sh: the cluster both measure the
# operator against. Expects `pods`, `bin` and `port` set, and `set -euo pipefail`.
#
# Starts `gamedeploy cluster --kubelet` on 127.0.0.1:$port, applies the seed GameDeployment with
# $pods replicas (no partition, maxUnavailable 20 %, grace 5 s), and defines `k` (kubectl on
# the cluster), `field NAME` (a field of the GameDeployment's status) and `image_change` (the
# rollout's trigger; prints the generation to wait for). The caller sets `operator` to the PID
# of the operator it starts; on exit both processes, and only they, are stopped.
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
  "$(dirname "${BASH_SOURCE[0]}")/../deploy/examples/inplace-update.yaml" | k apply -f - >/dev/null

field() { k get gamedeployment test-gamedeployment -o "jsonpath={.status.$1}"; }
image_change() {
  k patch gamedeployment test-gamedeployment --type=json \
    -p='[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"python:latest"}]' >/dev/null
  k get gamedeployment test-gamedeployment -o 'jsonpath={.metadata.generation}'
}
