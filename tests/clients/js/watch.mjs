// Watches with the official JavaScript client: a watch from a resourceVersion with
// allowWatchBookmarks replays what happened after it in order (and bookmarks, when the server
// sends them, carry a resourceVersion and nothing else); the informer lists, watches, fires
// its handlers and keeps its cache.
import * as k8s from '@kubernetes/client-node';
import { NS, check, eventually, json, kubeConfig, run, step } from './common.mjs';

// Whether a watch must see a BOOKMARK before its timeout (kube-apiserver sends one about
// 2 s before a watch's timeoutSeconds ends); the embedded server does too.
const BOOKMARKS_REQUIRED = true;

async function watchFromResourceVersion(kc, core) {
  step('list, then change a ConfigMap three times');
  const list = await core.listNamespacedConfigMap({ namespace: NS });
  const rv = list.metadata.resourceVersion;
  check(rv, 'the list has a resourceVersion');
  await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'js-watched' }, data: { n: '1' } } });
  await core.patchNamespacedConfigMap({ name: 'js-watched', namespace: NS, body: { data: { n: '2' } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  await core.deleteNamespacedConfigMap({ name: 'js-watched', namespace: NS });

  step('a watch from that resourceVersion (allowWatchBookmarks, timeoutSeconds 5) replays them');
  const seen = [];
  const bookmarks = [];
  let lastRv = 0;
  const ended = new Promise((resolve) => {
    new k8s.Watch(kc).watch(`/api/v1/namespaces/${NS}/configmaps`,
      { resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: 5 },
      (type, obj) => {
        if (type === 'BOOKMARK') {
          bookmarks.push(obj);
          return;
        }
        lastRv = Math.max(lastRv, Number(obj.metadata.resourceVersion));
        if (obj.metadata.name === 'js-watched') seen.push([type, obj.data && obj.data.n]);
      },
      (err) => resolve(err));
  });
  const err = await Promise.race([ended, new Promise((r) => setTimeout(() => r('no end'), 60000))]);
  check(err === null || err === undefined, () => `the watch ended with ${err}`);
  check(json(seen) === json([['ADDED', '1'], ['MODIFIED', '2'], ['DELETED', '2']]), () => `events: ${json(seen)}`);

  step('bookmarks');
  for (const b of bookmarks) {
    check(b.kind === 'ConfigMap' && Number(b.metadata.resourceVersion) >= lastRv,
      () => `a bookmark: ${json(b)}`);
    check(!b.data && !b.metadata.name, () => `a bookmark carries no object: ${json(b)}`);
  }
  if (bookmarks.length === 0) {
    console.log('NOTE: no BOOKMARK before the watch timed out (kube-apiserver sends one)');
    check(!BOOKMARKS_REQUIRED, 'no BOOKMARK');
  } else {
    console.log(`bookmarks seen: ${bookmarks.length}`);
  }
}

async function informer(kc, core) {
  step('an informer lists, watches and fires its handlers');
  const events = [];
  await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'js-before', labels: { informed: 'yes' } } } });
  const inf = k8s.makeInformer(kc, `/api/v1/namespaces/${NS}/configmaps`,
    () => core.listNamespacedConfigMap({ namespace: NS, labelSelector: 'informed=yes' }), 'informed=yes');
  for (const verb of [k8s.ADD, k8s.UPDATE, k8s.DELETE]) {
    inf.on(verb, (obj) => events.push([verb, obj.metadata.name]));
  }
  const errors = [];
  inf.on(k8s.ERROR, (e) => errors.push(String(e)));
  await inf.start();
  const next = async (n) => eventually(`${n} informer events`, () => events.length >= n && events);
  await next(1);
  check(json(events[0]) === json([k8s.ADD, 'js-before']), () => json(events));
  await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'js-after', labels: { informed: 'yes' } } } });
  await next(2);
  await core.patchNamespacedConfigMap({ name: 'js-after', namespace: NS, body: { data: { x: '1' } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  await next(3);
  await core.deleteNamespacedConfigMap({ name: 'js-before', namespace: NS });
  await next(4);
  check(json(events) === json([[k8s.ADD, 'js-before'], [k8s.ADD, 'js-after'], [k8s.UPDATE, 'js-after'], [k8s.DELETE, 'js-before']]),
    () => json(events));
  const cached = inf.list(NS).map((o) => o.metadata.name);
  check(json(cached) === json(['js-after']), () => `cache: ${json(cached)}`);
  check(inf.get('js-after', NS).data.x === '1', 'the cache has the update');
  check(errors.length === 0, () => `informer errors: ${json(errors)}`);
  await inf.stop();
}

async function main() {
  const kc = kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await watchFromResourceVersion(kc, core);
  await informer(kc, core);
}

run(main);
