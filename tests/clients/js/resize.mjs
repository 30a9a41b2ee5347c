// In-place resize with the official JavaScript client (@kubernetes/client-node): pods/resize
// through CoreV1Api's patch (strategic merge and JSON patch), read and replace, the simulated
// kubelet applying it, and kube-apiserver's refusal of a QoS change.
import * as k8s from '@kubernetes/client-node';
import { NS, check, eventually, json, kubeConfig, run, statusOf, step } from './common.mjs';

const cpu = (p) => p.status.containerStatuses[0].resources.limits.cpu;

async function main() {
  const v1 = kubeConfig().makeApiClient(k8s.CoreV1Api);
  const name = 'js-resize';
  const size = { requests: { cpu: '500m', memory: '128Mi' }, limits: { cpu: '500m', memory: '128Mi' } };

  step('create a Guaranteed pod and wait for it to run');
  await v1.createNamespacedPod({
    namespace: NS,
    body: { metadata: { name }, spec: { containers: [{ name: 'c', image: 'game:1', resources: size }] } },
  });
  const running = await eventually('the pod runs', async () => {
    const p = await v1.readNamespacedPod({ name, namespace: NS });
    return p.status.containerStatuses && p.status.containerStatuses[0].ready ? p : null;
  });
  const before = running.status.containerStatuses[0].containerID;

  step('patch pods/resize (strategic merge)');
  const strategic = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);
  const patched = await v1.patchNamespacedPodResize({
    name, namespace: NS,
    body: { spec: { containers: [{ name: 'c', resources: { requests: { cpu: '1' }, limits: { cpu: '1' } } }] } },
  }, strategic);
  check(patched.metadata.generation === 2, () => `generation ${patched.metadata.generation}`);

  step('read pods/resize until the kubelet applied it');
  const applied = await eventually('the resize applied', async () => {
    const p = await v1.readNamespacedPodResize({ name, namespace: NS });
    return p.status.observedGeneration === 2 && cpu(p) === '1' ? p : null;
  });
  const s = applied.status.containerStatuses[0];
  check(s.containerID === before && s.restartCount === 0, 'a NotRequired resize keeps the container');

  step('patch pods/resize (JSON patch, the default content type)');
  const jsonPatched = await v1.patchNamespacedPodResize({
    name, namespace: NS,
    body: [{ op: 'replace', path: '/spec/containers/0/resources/requests/cpu', value: '750m' },
      { op: 'replace', path: '/spec/containers/0/resources/limits/cpu', value: '750m' }],
  });
  check(jsonPatched.spec.containers[0].resources.limits.cpu === '750m', () => json(jsonPatched.spec));

  step('replace pods/resize, from the pod as it is once the kubelet applied the patch');
  const settled = await eventually('the JSON patch applied', async () => {
    const p = await v1.readNamespacedPodResize({ name, namespace: NS });
    return p.status.observedGeneration === 3 && cpu(p) === '750m' ? p : null;
  });
  settled.spec.containers[0].resources.requests.cpu = '600m';
  settled.spec.containers[0].resources.limits.cpu = '600m';
  const replaced = await v1.replaceNamespacedPodResize({ name, namespace: NS, body: settled });
  check(replaced.metadata.generation === 4, () => `generation ${replaced.metadata.generation}`);

  step('a QoS-changing resize is refused');
  const code = await statusOf(() => v1.patchNamespacedPodResize({
    name, namespace: NS,
    body: { spec: { containers: [{ name: 'c', resources: { limits: { cpu: '2' } } }] } },
  }, strategic));
  check(code === 422, `status ${code}`);
}

run(main);
