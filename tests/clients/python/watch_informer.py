"""Watches with the official Python client: a watch from a resourceVersion replays what
happened after it, in order; the SharedInformer keeps its cache and fires its handlers."""

import queue

from kubernetes import client, config, watch
from kubernetes.informer import ADDED, DELETED, MODIFIED, SharedInformer

from common import NS, check, eventually, run, step


def watch_from_resource_version(v1):
    step("list, then change a ConfigMap three times")
    rv = v1.list_namespaced_config_map(NS).metadata.resource_version
    check(rv, "the list has a resourceVersion")
    v1.create_namespaced_config_map(NS, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py-watched"), data={"n": "1"}))
    v1.patch_namespaced_config_map("py-watched", NS, {"data": {"n": "2"}})
    v1.delete_namespaced_config_map("py-watched", NS)

    step("a watch from the list's resourceVersion replays them")
    w = watch.Watch()
    seen = []
    for event in w.stream(v1.list_namespaced_config_map, NS, resource_version=rv,
                          timeout_seconds=30):
        obj = event["object"]
        if obj.metadata.name != "py-watched":
            continue
        seen.append((event["type"], (obj.data or {}).get("n")))
        if event["type"] == "DELETED":
            w.stop()
    check(seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")], f"events: {seen}")


def informer(v1):
    step("an informer lists, watches and fires its handlers")
    events = queue.Queue()
    inf = SharedInformer(list_func=v1.list_namespaced_config_map, namespace=NS,
                         label_selector="informed=yes")
    for kind in (ADDED, MODIFIED, DELETED):
        inf.add_event_handler(kind, lambda obj, kind=kind: events.put((kind, obj.metadata.name)))
    v1.create_namespaced_config_map(NS, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py-before", labels={"informed": "yes"})))
    inf.start()

    def next_event():
        try:
            return events.get(timeout=30)
        except queue.Empty:
            return ("nothing", None)

    check(next_event() == (ADDED, "py-before"), "the initial list fires ADDED")
    v1.create_namespaced_config_map(NS, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py-after", labels={"informed": "yes"})))
    check(next_event() == (ADDED, "py-after"), "a create fires ADDED")
    v1.patch_namespaced_config_map("py-after", NS, {"data": {"x": "1"}})
    check(next_event() == (MODIFIED, "py-after"), "a patch fires MODIFIED")
    v1.delete_namespaced_config_map("py-before", NS)
    check(next_event() == (DELETED, "py-before"), "a delete fires DELETED")
    keys = eventually("the cache to hold py-after only",
                      lambda: (lambda k: k if k == [f"{NS}/py-after"] else None)(
                          sorted(inf.cache.list_keys())))
    check(keys == [f"{NS}/py-after"], f"cache: {keys}")
    inf._stop_event.set()  # the watch thread is a daemon; no need to wait for its stream


def main():
    config.load_kube_config()
    v1 = client.CoreV1Api()
    watch_from_resource_version(v1)
    informer(v1)


if __name__ == "__main__":
    run(main)
