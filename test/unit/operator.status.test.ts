import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setCondition, deepEqual, statusMergePatch, truncate, rfc3339, isTrue } from '../../operator/status.ts';

const t1 = new Date('2026-01-01T00:00:00.123Z');
const t2 = new Date('2026-01-01T00:05:00Z');

test('conditions: a new condition gets lastTransitionTime now (second precision) and observedGeneration', () => {
  const c = setCondition([], { type: 'Accepted', status: 'True', reason: 'Valid', message: 'ok' }, { now: t1, generation: 3 });
  assert.deepEqual(c, [{ type: 'Accepted', status: 'True', reason: 'Valid', message: 'ok', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 3 }]);
});

test('conditions: lastTransitionTime changes only when the status flips', () => {
  let c = setCondition([], { type: 'Running', status: 'False', reason: 'Queued', message: 'waiting for quota' }, { now: t1 });
  c = setCondition(c, { type: 'Running', status: 'False', reason: 'Unschedulable', message: 'no GPU' }, { now: t2 });
  assert.equal(c[0].lastTransitionTime, rfc3339(t1), 'reason/message change keeps the time');
  assert.equal(c[0].reason, 'Unschedulable');
  c = setCondition(c, { type: 'Running', status: 'True', reason: 'PodRunning' }, { now: t2 });
  assert.equal(c[0].lastTransitionTime, rfc3339(t2));
});

test('conditions: mutually exclusive types are set False when one becomes True', () => {
  const ex = ['Running', 'Succeeded', 'Failed', 'Suspended'];
  let c = setCondition([], { type: 'Running', status: 'True', reason: 'PodRunning' }, { now: t1, exclusive: ex });
  c = setCondition(c, { type: 'Accepted', status: 'True', reason: 'Valid' }, { now: t1, exclusive: ex });
  c = setCondition(c, { type: 'Succeeded', status: 'True', reason: 'ScanCompleted' }, { now: t2, exclusive: ex });
  assert.equal(isTrue(c, 'Succeeded'), true);
  assert.equal(isTrue(c, 'Running'), false);
  assert.equal(c.find((x) => x.type === 'Running')!.lastTransitionTime, rfc3339(t2));
  assert.equal(isTrue(c, 'Accepted'), true, 'types outside the group are untouched');
});

test('conditions: re-applying the same input yields a deep-equal list (no status write)', () => {
  const a = setCondition([], { type: 'Accepted', status: 'True', reason: 'Valid' }, { now: t1, generation: 1 });
  const b = setCondition(a, { type: 'Accepted', status: 'True', reason: 'Valid' }, { now: t2, generation: 1 });
  assert.ok(deepEqual(a, b));
  assert.notEqual(a, b, 'input not mutated, a fresh list returned');
});

test('deepEqual ignores key order and undefined properties', () => {
  assert.ok(deepEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined }));
  assert.ok(!deepEqual({ a: [1, 2] }, { a: [2, 1] }));
  assert.ok(!deepEqual({ a: 1 }, { a: '1' }));
});

test('statusMergePatch sends changed keys, recursive for objects, null for removed ones', () => {
  const from = { verdict: 'Clean', metrics: { asrBefore: 0.9, asrAfter: 0.1 }, jobName: 'x-1', attempts: 1 };
  const to = { verdict: 'Clean', metrics: { asrBefore: 0.9, asrAfter: 0.05 }, attempts: 2 };
  assert.deepEqual(statusMergePatch(from, to), { metrics: { asrAfter: 0.05 }, attempts: 2, jobName: null });
  assert.deepEqual(statusMergePatch(to, to), {});
  assert.deepEqual(statusMergePatch(undefined, { a: [1] }), { a: [1] });
});

test('truncate keeps messages under the limit', () => {
  const s = truncate('x'.repeat(2000), 1000);
  assert.equal(s.length, 1000);
  assert.ok(s.endsWith('...'));
});
