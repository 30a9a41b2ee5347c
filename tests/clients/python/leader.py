"""Leader election with the official Python client's `leaderelection` on a Lease: the
candidate acquires it, holds it as recorded in the Lease, and stops when its work ends."""

import threading

from kubernetes import client, config
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from common import NS, check, fail, run, step


class Done(Exception):
    """Raised by the leader's work to end its leadership."""


def main():
    config.load_kube_config()
    coordination = client.CoordinationV1Api()
    led = threading.Event()
    stopped = threading.Event()
    seen = {}

    def lead():
        lease = coordination.read_namespaced_lease("py-leader", NS)
        seen["holder"] = lease.spec.holder_identity
        seen["duration"] = lease.spec.lease_duration_seconds
        led.set()
        raise Done()

    step("a candidate acquires the Lease")
    cfg = electionconfig.Config(
        LeaseLock("py-leader", NS, "candidate-a"), lease_duration=4, renew_deadline=3,
        retry_period=1, onstarted_leading=lead, onstopped_leading=stopped.set)
    runner = threading.Thread(target=leaderelection.LeaderElection(cfg).run, daemon=True)
    runner.start()
    runner.join(timeout=60)
    check(not runner.is_alive(), "the election did not end after the leader's work ended")
    check(led.is_set(), "never led")
    check(stopped.is_set(), "onstopped_leading was not called")
    check(seen == {"holder": "candidate-a", "duration": 4}, f"the Lease said {seen}")

    step("another candidate sees the lease held")
    lease = coordination.read_namespaced_lease("py-leader", NS)
    if lease.spec.holder_identity != "candidate-a":
        fail(f"holder now {lease.spec.holder_identity}")
    check(lease.spec.renew_time is not None and lease.spec.acquire_time is not None,
          "acquire and renew times")


if __name__ == "__main__":
    run(main)
