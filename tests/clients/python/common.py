"""Helpers of the official Python client's tests against `gamedeploy cluster` (run by
tests/clients.rs with KUBECONFIG set to the kubeconfig the cluster wrote)."""

import sys
import time

GROUP, VERSION, PLURAL = "tkex.tencent.com", "v1alpha1", "gamedeployments"
NS = "default"
_step = "start"


def step(name):
    """Names what the script does next, so a failure says where it was."""
    global _step
    _step = name
    print(f"-- {name}", flush=True)


def check(ok, what):
    if not ok:
        fail(what)


def fail(what):
    print(f"FAILED at step '{_step}': {what}", file=sys.stderr, flush=True)
    sys.exit(1)


def eventually(what, probe, bound=30.0):
    """Calls probe until it returns a true value (bounded; never asserts a duration)."""
    deadline = time.monotonic() + bound
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            fail(f"{what}: not within {bound:.0f} s")
        time.sleep(0.1)


def status_of(call):
    """The HTTP status an API call fails with (0 if it succeeds)."""
    from kubernetes.client.rest import ApiException

    try:
        call()
        return 0
    except ApiException as e:
        return e.status


def game_deployment(name, replicas=2, labels=None):
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GameDeployment",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "game", "image": "python:3.9"}]},
            },
            "updateStrategy": {"type": "InplaceUpdate"},
        },
    }


def run(main):
    try:
        main()
    except SystemExit:
        raise
    except BaseException as e:  # an unexpected exception fails the step, with its trace
        import traceback

        traceback.print_exc()
        fail(f"{type(e).__name__}: {e}")
    print("ok", flush=True)
