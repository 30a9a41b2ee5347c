"""CRUD with the official Python client (`kubernetes`): ConfigMaps and Pods through
CoreV1Api, GameDeployments through CustomObjectsApi (with the status and scale
subresources), and both through the `dynamic` client."""

from kubernetes import client, config, dynamic

from common import (GROUP, NS, PLURAL, VERSION, check, eventually, game_deployment,
                    run, status_of, step)


def configmaps(v1):
    step("create a ConfigMap (the client sends no Content-Type)")
    cm = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py-cm", labels={"suite": "py"}), data={"a": "1"})
    created = v1.create_namespaced_config_map(NS, cm)
    check(created.data == {"a": "1"}, f"created: {created.data}")
    check(created.metadata.uid and created.metadata.resource_version, "uid and resourceVersion")

    step("read and replace it")
    got = v1.read_namespaced_config_map("py-cm", NS)
    got.data["a"] = "2"
    replaced = v1.replace_namespaced_config_map("py-cm", NS, got)
    check(replaced.data == {"a": "2"}, f"replaced: {replaced.data}")
    step("a replace with a stale resourceVersion conflicts")
    check(status_of(lambda: v1.replace_namespaced_config_map("py-cm", NS, got)) == 409,
          "stale replace not 409")

    step("patch it (strategic merge for a dict, JSON patch for a list)")
    patched = v1.patch_namespaced_config_map("py-cm", NS, {"data": {"b": "3"}})
    check(patched.data == {"a": "2", "b": "3"}, f"merge-patched: {patched.data}")
    patched = v1.patch_namespaced_config_map(
        "py-cm", NS, [{"op": "replace", "path": "/data/a", "value": "4"}])
    check(patched.data == {"a": "4", "b": "3"}, f"json-patched: {patched.data}")

    step("list by label selector")
    v1.create_namespaced_config_map(NS, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py-other", labels={"suite": "other"})))
    listed = v1.list_namespaced_config_map(NS, label_selector="suite=py")
    check([i.metadata.name for i in listed.items] == ["py-cm"],
          f"listed: {[i.metadata.name for i in listed.items]}")

    step("delete it; a read is then 404")
    v1.delete_namespaced_config_map("py-cm", NS)
    check(status_of(lambda: v1.read_namespaced_config_map("py-cm", NS)) == 404, "still there")
    v1.delete_namespaced_config_map("py-other", NS)


def pods(v1):
    step("create a Pod")
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="py-pod", labels={"suite": "py"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]))
    created = v1.create_namespaced_pod(NS, pod)
    check(created.spec.containers[0].image == "busybox", "image")
    check(created.status is not None and created.status.phase == "Pending",
          f"phase: {created.status and created.status.phase}")

    step("list Pods by field selector, patch a label")
    listed = v1.list_namespaced_pod(NS, field_selector="metadata.name=py-pod")
    check(len(listed.items) == 1, f"field selector found {len(listed.items)}")
    patched = v1.patch_namespaced_pod("py-pod", NS, {"metadata": {"labels": {"x": "y"}}})
    check(patched.metadata.labels == {"suite": "py", "x": "y"}, f"{patched.metadata.labels}")

    step("delete the Pod (not on a node: gone at once)")
    # kube-apiserver answers a pod's delete with the Pod (`ReturnDeletedObject` in its pod
    # storage), which the client decodes as V1Pod.
    gone = v1.delete_namespaced_pod("py-pod", NS, grace_period_seconds=0)
    check(isinstance(gone, client.V1Pod) and gone.metadata.name == "py-pod",
          f"a pod's delete answers the Pod: {type(gone).__name__}")
    eventually("the pod gone",
               lambda: status_of(lambda: v1.read_namespaced_pod("py-pod", NS)) == 404)


def custom_objects(api):
    co = client.CustomObjectsApi(api)
    step("create a GameDeployment (CustomObjectsApi)")
    created = co.create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, game_deployment("py-gd", labels={"suite": "py"}))
    check(created["spec"]["replicas"] == 2, f"{created['spec']}")

    step("get, list by label, merge-patch")
    got = co.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "py-gd")
    check(got["metadata"]["uid"] == created["metadata"]["uid"], "uid")
    listed = co.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, label_selector="suite=py")
    check([i["metadata"]["name"] for i in listed["items"]] == ["py-gd"], f"{listed['items']}")
    patched = co.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "py-gd", {"metadata": {"annotations": {"a": "b"}}})
    check(patched["metadata"]["annotations"] == {"a": "b"}, f"{patched['metadata']}")

    step("status subresource: a patch of status changes status only")
    st = co.patch_namespaced_custom_object_status(
        GROUP, VERSION, NS, PLURAL, "py-gd",
        {"status": {"replicas": 2, "observedGeneration": 1}, "spec": {"replicas": 9}})
    check(st["status"]["replicas"] == 2, f"status: {st.get('status')}")
    check(st["spec"]["replicas"] == 2, "a status patch changed spec")
    got = co.get_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, "py-gd")
    check(got["status"]["replicas"] == 2, f"status read: {got.get('status')}")

    step("scale subresource")
    scale = co.get_namespaced_custom_object_scale(GROUP, VERSION, NS, PLURAL, "py-gd")
    check(scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2, f"{scale}")
    co.patch_namespaced_custom_object_scale(
        GROUP, VERSION, NS, PLURAL, "py-gd", {"spec": {"replicas": 4}})
    got = co.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "py-gd")
    check(got["spec"]["replicas"] == 4, f"replicas after scale: {got['spec']['replicas']}")

    step("replace with the read object, then delete")
    got["spec"]["replicas"] = 1
    replaced = co.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "py-gd", got)
    check(replaced["spec"]["replicas"] == 1, "replace")
    co.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "py-gd")
    check(status_of(lambda: co.get_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "py-gd")) == 404, "still there")


def dynamic_client(api):
    step("the dynamic client discovers ConfigMaps and GameDeployments")
    dyn = dynamic.DynamicClient(api)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    gds = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind="GameDeployment")
    check(gds.namespaced and gds.name == PLURAL, f"{gds.name} namespaced={gds.namespaced}")

    step("dynamic create, get, patch, delete")
    cms.create(namespace=NS, body={"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "py-dyn"}, "data": {"k": "v"}})
    got = cms.get(name="py-dyn", namespace=NS)
    check(got.data.k == "v", f"{got.data}")
    cms.patch(name="py-dyn", namespace=NS, body={"data": {"k": "w"}},
              content_type="application/merge-patch+json")
    check(cms.get(name="py-dyn", namespace=NS).data.k == "w", "patched")
    cms.delete(name="py-dyn", namespace=NS)

    gd = gds.create(namespace=NS, body=game_deployment("py-dyn-gd"))
    check(gd.spec.replicas == 2, "gd replicas")
    listed = gds.get(namespace=NS)
    check("py-dyn-gd" in [i.metadata.name for i in listed.items], "dynamic list")
    gds.delete(name="py-dyn-gd", namespace=NS)


def main():
    config.load_kube_config()
    api = client.ApiClient()
    v1 = client.CoreV1Api(api)
    configmaps(v1)
    pods(v1)
    custom_objects(api)
    dynamic_client(api)


if __name__ == "__main__":
    run(main)
