// The event recorder (operator/events.ts). Specification: events never hold up reconciles (they wait
// while reconciles are waiting, except when overdue, then one at a time), repeats of a queued event
// become one Event with series.count, eventTime is when it happened, the backlog is bounded, and
// flush() sends everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventRecorder, type PendingEvent, type Regarding } from '../../operator/events.ts';

const regarding = (name: string): Regarding => ({ apiVersion: 'elibadcode.dev/v1alpha1', kind: 'BackdoorScan', name, namespace: 'ns', uid: `${name}-uid`, resourceVersion: '7' });
const ev = (reason: string, note = `${reason} happened`): PendingEvent => ({ type: 'Normal', reason, action: 'Do', note });

function recorder(opts: { busy?: () => boolean; now?: () => number; maxDelayMs?: number; maxBacklog?: number; concurrency?: number; fail?: boolean } = {}) {
  const sent: Array<{ namespace: string; body: any }> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const waiting: Array<() => void> = [];
  const gate = { hold: false };
  const api = {
    createNamespacedEvent: async (r: { namespace: string; body: any }) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      if (gate.hold) await new Promise<void>((res) => waiting.push(res));
      else await sleep(1);
      inFlight--;
      if (opts.fail) throw new Error('boom');
      sent.push(r);
    },
  };
  const rec = new EventRecorder({ api, controller: 'elibadcode.dev/operator', instance: 'op-1', recheckMs: 5, ...opts });
  return { rec, sent, gate, maxInFlight: () => maxInFlight, release: () => waiting.splice(0).forEach((r) => r()) };
}

test('events: sent in the background with the regarding object, reporting controller, and eventTime = when it happened', async () => {
  let now = Date.parse('2026-11-25T10:00:00.123Z');
  const { rec, sent } = recorder({ now: () => now });
  rec.emitInBackground(regarding('a'), [ev('JobCreated', 'Created Job a-1 (attempt 1/3)')]);
  now += 60_000;
  await rec.flush();
  assert.equal(sent.length, 1);
  const b = sent[0].body;
  assert.equal(sent[0].namespace, 'ns');
  assert.equal(b.reason, 'JobCreated');
  assert.equal(b.note, 'Created Job a-1 (attempt 1/3)');
  assert.equal(b.reportingController, 'elibadcode.dev/operator');
  assert.deepEqual(b.regarding, { apiVersion: 'elibadcode.dev/v1alpha1', kind: 'BackdoorScan', name: 'a', namespace: 'ns', uid: 'a-uid', resourceVersion: '7' });
  assert.equal(b.eventTime.toISOString(), '2026-11-25T10:00:00.123000Z', 'MicroTime of the emit, not of the send');
  assert.equal(b.series, undefined);
  assert.match(b.metadata.name, /^a\.[0-9a-f]+$/);
});

test('events: while reconciles wait (busy) events wait too; when the queue empties they go out', async () => {
  let busy = true;
  const { rec, sent } = recorder({ busy: () => busy });
  rec.emitInBackground(regarding('a'), [ev('JobCreated')]);
  rec.emitInBackground(regarding('b'), [ev('JobCreated')]);
  await sleep(40);
  assert.equal(sent.length, 0, 'nothing sent while busy');
  assert.equal(rec.pending, 2);
  busy = false;
  await sleep(40);
  assert.equal(sent.length, 2);
  assert.equal(rec.pending, 0);
});

test('events: an event queued longer than maxDelayMs goes out even while busy, one request at a time', async () => {
  let now = 0;
  const { rec, sent, maxInFlight } = recorder({ busy: () => true, now: () => now, maxDelayMs: 1000 });
  for (const n of ['a', 'b', 'c']) rec.emitInBackground(regarding(n), [ev('JobCreated')]);
  await sleep(30);
  assert.equal(sent.length, 0);
  now = 1000;
  await sleep(60);
  assert.equal(sent.length, 3);
  assert.equal(maxInFlight(), 1);
});

test('events: not busy -> up to `concurrency` requests in flight', async () => {
  const { rec, gate, maxInFlight, release } = recorder({ concurrency: 3 });
  gate.hold = true;
  for (const n of ['a', 'b', 'c', 'd', 'e']) rec.emitInBackground(regarding(n), [ev('JobCreated')]);
  await sleep(10);
  assert.equal(maxInFlight(), 3);
  gate.hold = false;
  release();
  await rec.flush();
  assert.equal(rec.stats.sent, 5);
});

test('events: a repeat of a queued event (same object, type, reason, action, note) is aggregated into one Event with series.count', async () => {
  let now = Date.parse('2026-11-25T10:00:00Z');
  let busy = true;
  const { rec, sent } = recorder({ busy: () => busy, now: () => now });
  rec.emitInBackground(regarding('a'), [ev('ImagePullFailed', 'pull failed')]);
  now += 5_000;
  rec.emitInBackground({ ...regarding('a'), resourceVersion: '9' }, [ev('ImagePullFailed', 'pull failed')]);
  now += 5_000;
  rec.emitInBackground(regarding('a'), [ev('ImagePullFailed', 'pull failed')]);
  rec.emitInBackground(regarding('a'), [ev('ImagePullFailed', 'another note')]);
  rec.emitInBackground(regarding('b'), [ev('ImagePullFailed', 'pull failed')]);
  busy = false;
  await rec.flush();
  assert.equal(sent.length, 3, 'one per distinct (object, event)');
  const a = sent.find((s) => s.body.regarding.name === 'a' && s.body.note === 'pull failed')!.body;
  assert.equal(a.series.count, 3);
  assert.equal(a.series.lastObservedTime.toISOString(), '2026-11-25T10:00:10.000000Z');
  assert.equal(a.eventTime.toISOString(), '2026-11-25T10:00:00.000000Z');
  assert.equal(rec.stats.aggregated, 2);
  assert.equal(rec.stats.sent, 3);
  // Once sent, the same event starts a new one.
  rec.emitInBackground(regarding('a'), [ev('ImagePullFailed', 'pull failed')]);
  await rec.flush();
  assert.equal(sent.length, 4);
  assert.equal(sent[3].body.series, undefined);
});

test('events: beyond maxBacklog new events are dropped and counted; failures are counted, not retried', async () => {
  const { rec, sent } = recorder({ busy: () => true, maxBacklog: 2 });
  for (const n of ['a', 'b', 'c', 'd']) rec.emitInBackground(regarding(n), [ev('JobCreated')]);
  assert.equal(rec.pending, 2);
  assert.equal(rec.stats.dropped, 2);
  await rec.flush();
  assert.deepEqual(sent.map((s) => s.body.regarding.name), ['a', 'b'], 'flush sends even while busy, in order');
  const failing = recorder({ fail: true });
  failing.rec.emitInBackground(regarding('a'), [ev('JobCreated')]);
  await failing.rec.flush();
  assert.equal(failing.rec.stats.failed, 1);
  assert.equal(failing.rec.pending, 0);
});

test('events: flush gives up after timeoutMs', async () => {
  const { rec, gate } = recorder();
  gate.hold = true;
  rec.emitInBackground(regarding('a'), [ev('JobCreated')]);
  const t0 = Date.now();
  await rec.flush({ timeoutMs: 50 });
  assert.ok(Date.now() - t0 < 1000);
});
