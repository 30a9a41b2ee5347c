// CRUD with the official JavaScript client (@kubernetes/client-node): ConfigMaps with label
// selectors, pagination, the three patch types, server-side apply with a conflict and dry-run;
// GameDeployments through CustomObjectsApi with the status and scale subresources; a Lease;
// events (core/v1 and events.k8s.io/v1).
import * as k8s from '@kubernetes/client-node';
import { NS, GROUP, VERSION, PLURAL, check, eventually, gameDeployment, json, kubeConfig, run,
  statusOf, step } from './common.mjs';

const patchAs = (type) => k8s.setHeaderOptions('Content-Type', type);

async function configMaps(core) {
  step('create, read, replace a ConfigMap');
  const created = await core.createNamespacedConfigMap({ namespace: NS, body: {
    metadata: { name: 'js-cm', labels: { suite: 'js' } }, data: { a: '1' } } });
  check(created.data.a === '1' && created.metadata.uid, () => json(created));
  const read = await core.readNamespacedConfigMap({ name: 'js-cm', namespace: NS });
  read.data.a = '2';
  const replaced = await core.replaceNamespacedConfigMap({ name: 'js-cm', namespace: NS, body: read });
  check(replaced.data.a === '2', () => json(replaced.data));
  check(await statusOf(() => core.replaceNamespacedConfigMap({ name: 'js-cm', namespace: NS, body: read })) === 409,
    'a stale replace is not 409');

  step('JSON patch, merge patch, strategic merge patch');
  let p = await core.patchNamespacedConfigMap({ name: 'js-cm', namespace: NS,
    body: [{ op: 'add', path: '/data/b', value: 'json' }] }, patchAs(k8s.PatchStrategy.JsonPatch));
  check(p.data.b === 'json', () => json(p.data));
  p = await core.patchNamespacedConfigMap({ name: 'js-cm', namespace: NS,
    body: { data: { c: 'merge' } } }, patchAs(k8s.PatchStrategy.MergePatch));
  check(p.data.c === 'merge' && p.data.b === 'json', () => json(p.data));
  p = await core.patchNamespacedConfigMap({ name: 'js-cm', namespace: NS,
    body: { metadata: { labels: { s: 'strategic' } } } }, patchAs(k8s.PatchStrategy.StrategicMergePatch));
  check(p.metadata.labels.s === 'strategic' && p.metadata.labels.suite === 'js', () => json(p.metadata.labels));

  step('server-side apply: a second manager conflicts, then forces');
  const apply = (manager, value, force) => core.patchNamespacedConfigMap({ name: 'js-ssa', namespace: NS,
    fieldManager: manager, force, body: { apiVersion: 'v1', kind: 'ConfigMap',
      metadata: { name: 'js-ssa' }, data: { k: value } } }, patchAs(k8s.PatchStrategy.ServerSideApply));
  const applied = await apply('js-a', 'a', false);
  check(applied.data.k === 'a', () => json(applied));
  let conflict = null;
  try {
    await apply('js-b', 'b', false);
  } catch (e) {
    conflict = e;
  }
  check(conflict && conflict.code === 409, () => `not a conflict: ${conflict && conflict.code}`);
  const status = typeof conflict.body === 'string' ? JSON.parse(conflict.body) : conflict.body;
  check(status.reason === 'Conflict' && /js-a/.test(status.message), () => json(status));
  const forced = await apply('js-b', 'b', true);
  check(forced.data.k === 'b', () => json(forced.data));
  const managers = forced.metadata.managedFields.map((m) => m.manager);
  check(managers.includes('js-b') && !managers.includes('js-a'), () => json(managers));

  step('dry-run: the answer, nothing stored');
  const dry = await core.createNamespacedConfigMap({ namespace: NS, dryRun: 'All', body: {
    metadata: { name: 'js-dry' }, data: { d: '1' } } });
  check(dry.metadata.name === 'js-dry' && dry.data.d === '1', () => json(dry));
  check(await statusOf(() => core.readNamespacedConfigMap({ name: 'js-dry', namespace: NS })) === 404,
    'a dry-run create was stored');
  await core.deleteNamespacedConfigMap({ name: 'js-cm', namespace: NS, dryRun: 'All' });
  await core.readNamespacedConfigMap({ name: 'js-cm', namespace: NS });

  step('list by label selector, then page through with limit and continue');
  for (let i = 0; i < 5; i++) {
    await core.createNamespacedConfigMap({ namespace: NS, body: {
      metadata: { name: `js-page-${i}`, labels: { page: 'yes' } } } });
  }
  const bySuite = await core.listNamespacedConfigMap({ namespace: NS, labelSelector: 'suite=js' });
  check(json(bySuite.items.map((i) => i.metadata.name)) === json(['js-cm']), () => json(bySuite.items.map((i) => i.metadata.name)));
  const names = [];
  let cont;
  let pages = 0;
  do {
    const page = await core.listNamespacedConfigMap({ namespace: NS, labelSelector: 'page=yes', limit: 2, _continue: cont });
    pages += 1;
    check(page.items.length <= 2, `a page of ${page.items.length}`);
    names.push(...page.items.map((i) => i.metadata.name));
    cont = page.metadata._continue;
    check(pages < 10, 'pagination does not end');
  } while (cont);
  check(pages === 3 && json(names.sort()) === json([0, 1, 2, 3, 4].map((i) => `js-page-${i}`)),
    () => `${pages} pages: ${json(names)}`);

  step('delete; a read is then 404');
  await core.deleteNamespacedConfigMap({ name: 'js-cm', namespace: NS });
  check(await statusOf(() => core.readNamespacedConfigMap({ name: 'js-cm', namespace: NS })) === 404, 'still there');
}

async function customObjects(co) {
  step('create and read a GameDeployment (CustomObjectsApi)');
  const created = await co.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS,
    plural: PLURAL, body: gameDeployment('js-gd', 2, { suite: 'js' }) });
  check(created.spec.replicas === 2, () => json(created.spec));
  const listed = await co.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS,
    plural: PLURAL, labelSelector: 'suite=js' });
  check(json(listed.items.map((i) => i.metadata.name)) === json(['js-gd']), () => json(listed.items));
  const merged = await co.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS,
    plural: PLURAL, name: 'js-gd', body: { metadata: { annotations: { a: 'b' } } } },
  patchAs(k8s.PatchStrategy.MergePatch));
  check(merged.metadata.annotations.a === 'b', () => json(merged.metadata));

  step('status subresource');
  const st = await co.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace: NS,
    plural: PLURAL, name: 'js-gd', body: { status: { replicas: 2, observedGeneration: 1 }, spec: { replicas: 7 } } },
  patchAs(k8s.PatchStrategy.MergePatch));
  check(st.status.replicas === 2 && st.spec.replicas === 2, () => json(st));
  const readStatus = await co.getNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace: NS,
    plural: PLURAL, name: 'js-gd' });
  check(readStatus.status.replicas === 2, () => json(readStatus.status));

  step('scale subresource');
  const scale = await co.getNamespacedCustomObjectScale({ group: GROUP, version: VERSION, namespace: NS,
    plural: PLURAL, name: 'js-gd' });
  check(scale.kind === 'Scale' && scale.spec.replicas === 2, () => json(scale));
  const scaled = await co.patchNamespacedCustomObjectScale({ group: GROUP, version: VERSION, namespace: NS,
    plural: PLURAL, name: 'js-gd', body: { spec: { replicas: 5 } } }, patchAs(k8s.PatchStrategy.MergePatch));
  check(scaled.spec.replicas === 5, () => json(scaled));
  const after = await co.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS,
    plural: PLURAL, name: 'js-gd' });
  check(after.spec.replicas === 5, () => json(after.spec));

  step('delete the GameDeployment');
  await co.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, name: 'js-gd' });
  check(await statusOf(() => co.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS,
    plural: PLURAL, name: 'js-gd' })) === 404, 'still there');
}

async function lease(coordination) {
  step('a Lease: create, renew by replace, read');
  const now = new Date();
  const created = await coordination.createNamespacedLease({ namespace: NS, body: {
    metadata: { name: 'js-lease' },
    spec: { holderIdentity: 'js-a', leaseDurationSeconds: 15, acquireTime: now, renewTime: now } } });
  check(created.spec.holderIdentity === 'js-a', () => json(created.spec));
  // MicroTime: the client hands it over as the server wrote it (RFC 3339, microseconds).
  const ms = (t) => new Date(String(t instanceof Date ? t.toISOString() : t)).getTime();
  check(ms(created.spec.renewTime) === now.getTime(), () => `renewTime ${created.spec.renewTime}`);
  created.spec.renewTime = new Date(now.getTime() + 1000);
  created.spec.leaseTransitions = 1;
  const renewed = await coordination.replaceNamespacedLease({ name: 'js-lease', namespace: NS, body: created });
  check(renewed.spec.leaseTransitions === 1, () => json(renewed.spec));
  const read = await coordination.readNamespacedLease({ name: 'js-lease', namespace: NS });
  check(ms(read.spec.renewTime) === now.getTime() + 1000, () => json(read.spec));
}

async function events(core, eventsV1) {
  step('events: core/v1 and events.k8s.io/v1, listed both ways');
  const involved = { kind: 'ConfigMap', namespace: NS, name: 'js-ssa', apiVersion: 'v1' };
  await core.createNamespacedEvent({ namespace: NS, body: {
    metadata: { name: 'js-ev-core' }, involvedObject: involved, reason: 'Tested', message: 'from core/v1',
    type: 'Normal', source: { component: 'js-client' }, firstTimestamp: new Date(), lastTimestamp: new Date(), count: 1 } });
  await eventsV1.createNamespacedEvent({ namespace: NS, body: {
    metadata: { name: 'js-ev-v1' }, regarding: involved, reason: 'Tested', note: 'from events.k8s.io/v1',
    type: 'Normal', action: 'Test', reportingController: 'js-client', reportingInstance: 'js-0',
    eventTime: new Date() } });
  const coreList = await core.listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=js-ssa' });
  const coreNames = coreList.items.map((e) => e.metadata.name).sort();
  check(json(coreNames) === json(['js-ev-core', 'js-ev-v1']), () => `core/v1 list: ${json(coreNames)}`);
  const v1List = await eventsV1.listNamespacedEvent({ namespace: NS });
  const v1 = v1List.items.find((e) => e.metadata.name === 'js-ev-core');
  check(v1 && v1.note === 'from core/v1' && v1.regarding.name === 'js-ssa', () => json(v1));
}

async function main() {
  const kc = kubeConfig();
  await configMaps(kc.makeApiClient(k8s.CoreV1Api));
  await customObjects(kc.makeApiClient(k8s.CustomObjectsApi));
  await lease(kc.makeApiClient(k8s.CoordinationV1Api));
  await events(kc.makeApiClient(k8s.CoreV1Api), kc.makeApiClient(k8s.EventsV1Api));
}

run(main);
