// Helpers of the official JavaScript client's tests against `gamedeploy cluster` (run by
// tests/clients.rs with KUBECONFIG set to the kubeconfig the cluster wrote).
import * as k8s from '@kubernetes/client-node';

export const NS = 'default';
export const GROUP = 'tkex.tencent.com';
export const VERSION = 'v1alpha1';
export const PLURAL = 'gamedeployments';

let current = 'start';

/** Names what the script does next, so a failure says where it was. */
export function step(name) {
  current = name;
  console.log(`-- ${name}`);
}

export function fail(what) {
  console.error(`FAILED at step '${current}': ${what}`);
  process.exit(1);
}

export function check(ok, what) {
  if (!ok) fail(typeof what === 'function' ? what() : what);
}

export const json = (v) => JSON.stringify(v);

/** The kubeconfig exactly as `gamedeploy cluster` wrote it (KUBECONFIG), no insecure flags. */
export function kubeConfig() {
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const cluster = kc.getCurrentCluster();
  check(cluster && cluster.server.startsWith('https://'), `server: ${cluster && cluster.server}`);
  check(!cluster.skipTLSVerify, 'the kubeconfig must not skip TLS verification');
  return kc;
}

/** The HTTP status an API call fails with (0 if it succeeds). */
export async function statusOf(call) {
  try {
    await call();
    return 0;
  } catch (e) {
    if (e && typeof e.code === 'number') return e.code;
    throw e;
  }
}

/** Polls `probe` until it returns a truthy value (bounded; never asserts a duration). */
export async function eventually(what, probe, boundMs = 30000) {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const got = await probe();
    if (got) return got;
    if (Date.now() > deadline) fail(`${what}: not within ${boundMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function gameDeployment(name, replicas = 2, labels = { app: name }) {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'GameDeployment',
    metadata: { name, labels },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'game', image: 'python:3.9' }] },
      },
      updateStrategy: { type: 'InplaceUpdate' },
    },
  };
}

export async function run(main) {
  try {
    await main();
  } catch (e) {
    console.error(e && e.stack ? e.stack : e);
    if (e && e.body) console.error(`body: ${typeof e.body === 'string' ? e.body : json(e.body)}`);
    fail(`${e && e.name}: ${e && e.message}`);
  }
  console.log('ok');
  process.exit(0);
}
