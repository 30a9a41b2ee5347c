"""In-place resize with the official Python client (`kubernetes`): `pods/resize` through
CoreV1Api's patch, read and replace, the simulated kubelet applying it (status resources,
observedGeneration, the same container), and kube-apiserver's refusal of a QoS change."""

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from common import NS, check, eventually, run, step


def cpu(pod):
    return pod.status.container_statuses[0].resources.limits["cpu"]


def main():
    config.load_kube_config()
    v1 = client.CoreV1Api()
    size = {"requests": {"cpu": "500m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "py-resize"},
           "spec": {"containers": [{"name": "c", "image": "game:1", "resources": size}]}}

    step("create a Guaranteed pod and wait for it to run")
    v1.create_namespaced_pod(NS, pod)
    running = eventually("the pod runs", lambda: (
        lambda p: p if p.status.container_statuses and p.status.container_statuses[0].ready
        else None)(v1.read_namespaced_pod("py-resize", NS)))
    before = running.status.container_statuses[0].container_id

    step("patch pods/resize (strategic merge)")
    body = {"spec": {"containers": [{"name": "c", "resources": {
        "requests": {"cpu": "1"}, "limits": {"cpu": "1"}}}]}}
    patched = v1.patch_namespaced_pod_resize("py-resize", NS, body)
    check(patched.metadata.generation == 2, f"generation {patched.metadata.generation}")
    check(patched.spec.containers[0].resources.limits["cpu"] == "1", "spec cpu")

    step("read pods/resize until the kubelet applied it")
    applied = eventually("the resize applied", lambda: (
        lambda p: p if p.status.observed_generation == 2 and cpu(p) == "1" else None)(
            v1.read_namespaced_pod_resize("py-resize", NS)))
    status = applied.status.container_statuses[0]
    check(status.container_id == before and status.restart_count == 0,
          "a NotRequired resize keeps the container")

    step("replace pods/resize")
    applied.spec.containers[0].resources.requests["cpu"] = "750m"
    applied.spec.containers[0].resources.limits["cpu"] = "750m"
    replaced = v1.replace_namespaced_pod_resize("py-resize", NS, applied)
    check(replaced.metadata.generation == 3, f"generation {replaced.metadata.generation}")

    step("a QoS-changing resize is refused")
    try:
        v1.patch_namespaced_pod_resize("py-resize", NS, {"spec": {"containers": [
            {"name": "c", "resources": {"limits": {"cpu": "2"}}}]}})
        check(False, "a Guaranteed pod was made Burstable")
    except ApiException as e:
        check(e.status == 422, f"status {e.status}")
        check("Pod QOS Class may not change as a result of resizing" in e.body, e.body)


if __name__ == "__main__":
    run(main)
