import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WorkQueue,
  ItemExponentialRateLimiter,
  BucketRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
  DEFAULT_RATE_LIMITER,
} from '../../operator/workqueue.ts';

test('workqueue: a key added many times while waiting is handed out once', async () => {
  const q = new WorkQueue('t');
  for (let i = 0; i < 5; i++) q.add('ns/a');
  q.add('ns/b');
  assert.equal(q.len(), 2);
  assert.equal(await q.get(), 'ns/a');
  assert.equal(await q.get(), 'ns/b');
  assert.equal(q.len(), 0);
});

test('workqueue: a key being processed is not handed to a second worker; re-added keys come back after done()', async () => {
  const q = new WorkQueue('t');
  q.add('k');
  const first = await q.get();
  assert.equal(first, 'k');
  q.add('k'); // arrives while processing
  q.add('k');
  assert.equal(q.len(), 0, 'not queued while processing');
  let second: string | undefined;
  const p = q.get().then((k) => (second = k));
  await new Promise((r) => setImmediate(r));
  assert.equal(second, undefined, 'no concurrent hand-out of the same key');
  q.done('k');
  await p;
  assert.equal(second, 'k', 'handed out again once, after done');
  q.done('k');
  assert.equal(q.len(), 0);
});

test('workqueue: N workers never process the same key concurrently', async () => {
  const q = new WorkQueue('t');
  const active = new Set<string>();
  let overlaps = 0;
  let processed = 0;
  const workers = Array.from({ length: 8 }, async () => {
    for (;;) {
      const k = await q.get();
      if (k === undefined) return;
      if (active.has(k)) overlaps++;
      active.add(k);
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      active.delete(k);
      processed++;
      q.done(k);
    }
  });
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 10; i++) q.add(`k${i % 4}`);
    await new Promise((r) => setTimeout(r, 1));
  }
  await new Promise((r) => setTimeout(r, 50));
  await q.shutdown({ drain: true });
  await Promise.all(workers);
  assert.equal(overlaps, 0);
  assert.ok(processed >= 4 && processed < 500, `dedup collapses adds (processed ${processed})`);
});

test('workqueue: per-item exponential backoff 5ms doubling, capped at 1000s, reset by forget', () => {
  const rl = new ItemExponentialRateLimiter(5, 1000_000);
  const delays = Array.from({ length: 6 }, () => rl.when('a'));
  assert.deepEqual(delays, [5, 10, 20, 40, 80, 160]);
  assert.equal(rl.when('b'), 5, 'keys are independent');
  for (let i = 0; i < 100; i++) rl.when('a');
  assert.equal(rl.when('a'), 1000_000);
  assert.equal(rl.numRequeues('a'), 107);
  rl.forget('a');
  assert.equal(rl.when('a'), 5);
});

test('workqueue: token bucket allows a burst of 100 then 10 per second', () => {
  let now = 0;
  const b = new BucketRateLimiter(10, 100, { now: () => now });
  for (let i = 0; i < 100; i++) assert.equal(b.when(), 0);
  assert.equal(Math.round(b.when()), 100);
  assert.equal(Math.round(b.when()), 200);
  now += 1000; // 10 tokens refilled, 2 were owed: 8 left
  for (let i = 0; i < 7; i++) assert.equal(b.when(), 0);
  assert.equal(Math.round(b.when()), 0);
  assert.equal(Math.round(b.when()), 100);
});

test('workqueue: default limiter is the max of per-item backoff and the bucket', () => {
  let now = 0;
  const clock = { now: () => now };
  const rl = new MaxOfRateLimiter(new ItemExponentialRateLimiter(5, 1000_000), new BucketRateLimiter(10, 100, clock));
  assert.equal(rl.when('x'), 5);
  assert.equal(rl.when('x'), 10);
  for (let i = 0; i < 200; i++) rl.when(`y${i}`); // drain the bucket
  assert.ok(rl.when('z') > 5, 'bucket delay dominates once the burst is spent');
  assert.ok(defaultControllerRateLimiter({}, clock).when('q') === 5);
});

test('workqueue: the default retry bucket is sized for an API server: 500 retries at once, then 50 per second', () => {
  let now = 0;
  const rl = defaultControllerRateLimiter({}, { now: () => now });
  assert.deepEqual(DEFAULT_RATE_LIMITER, { baseDelayMs: 5, maxDelayMs: 1000_000, qps: 50, burst: 500 });
  // 500 different keys failing at once (an API-server outage): each waits only its own first backoff.
  for (let i = 0; i < 500; i++) assert.equal(rl.when(`k${i}`), 5);
  // Beyond the burst, retries are spread at 50/s: the 501st waits 20 ms, the 550th about a second.
  assert.equal(Math.round(rl.when('k500')), 20);
  for (let i = 501; i < 549; i++) rl.when(`k${i}`);
  assert.equal(Math.round(rl.when('k549')), 1000);
  // 10,000 failed scans are all retried within about 3 minutes (client-go's 10 qps: 17 minutes).
  let last = 0;
  for (let i = 550; i < 10_000; i++) last = rl.when(`k${i}`);
  assert.ok(last < 200_000 && last > 180_000, `last retry after ${last} ms`);
  // Options override the defaults.
  const slow = defaultControllerRateLimiter({ qps: 1, burst: 1, baseDelayMs: 100 }, { now: () => 0 });
  assert.equal(slow.when('a'), 100);
  assert.equal(slow.when('b'), 1000);
});

test('workqueue: queuedFor tells how long the key held by a worker waited in the queue', async () => {
  let now = 1000;
  const q = new WorkQueue('t', { clock: { now: () => now } });
  q.add('a');
  now += 250;
  assert.equal(await q.get(), 'a');
  assert.equal(q.queuedFor('a'), 250);
  q.done('a');
  assert.equal(q.queuedFor('a'), undefined);
});

test('workqueue: high-priority keys go first, but after highPerNormal of them a waiting normal key is served', async () => {
  const q = new WorkQueue('t', { highPerNormal: 4 });
  for (let i = 0; i < 3; i++) q.add(`n${i}`);
  for (let i = 0; i < 10; i++) q.add(`h${i}`, 'high');
  assert.equal(q.len(), 13);
  const order: string[] = [];
  for (let i = 0; i < 13; i++) {
    const k = (await q.get())!;
    order.push(k);
    q.done(k);
  }
  assert.deepEqual(order, ['h0', 'h1', 'h2', 'h3', 'n0', 'h4', 'h5', 'h6', 'h7', 'n1', 'h8', 'h9', 'n2']);
  assert.equal(q.len(), 0);
});

test('workqueue: a waiting key added again at high priority moves up, once; a key added while processed keeps its priority for after done()', async () => {
  const q = new WorkQueue('t', { highPerNormal: 100 });
  q.add('a');
  q.add('b');
  q.add('b', 'high');
  q.add('b', 'high');
  q.add('b');
  assert.equal(q.len(), 2);
  assert.equal(await q.get(), 'b');
  assert.equal(await q.get(), 'a');
  q.done('a');
  assert.equal(q.len(), 0, 'the stale normal entry of b is not a key');
  // b is being processed: added at high priority, it waits and then goes before a normal key.
  q.add('b', 'high');
  q.add('c');
  q.done('b');
  assert.equal(await q.get(), 'b');
  assert.equal(await q.get(), 'c');
});

test('workqueue: addRateLimited delays the key; addAfter keeps the earliest time', async () => {
  const q = new WorkQueue('t');
  const t0 = performance.now();
  q.addRateLimited('a'); // 5 ms
  q.addRateLimited('a'); // 10 ms, later than the pending one: ignored
  assert.equal(q.len(), 0);
  assert.equal(await q.get(), 'a');
  const waited = performance.now() - t0;
  assert.ok(waited >= 4 && waited < 200, `waited ${waited}`);
  q.done('a');
  q.addAfter('b', 500);
  q.addAfter('b', 20);
  const t1 = performance.now();
  assert.equal(await q.get(), 'b');
  assert.ok(performance.now() - t1 < 300);
  q.done('b');
});

test('workqueue: shutdown wakes idle workers; drain waits for in-flight keys', async () => {
  const q = new WorkQueue('t');
  const idle = q.get();
  q.add('busy');
  // the idle getter got 'busy'
  assert.equal(await idle, 'busy');
  const waiter = q.get();
  let drained = false;
  const sd = q.shutdown({ drain: true }).then(() => (drained = true));
  assert.equal(await waiter, undefined);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(drained, false, 'still processing');
  q.add('ignored-after-shutdown');
  q.done('busy');
  await sd;
  assert.equal(drained, true);
  assert.equal(await q.get(), undefined);
});

test('workqueue: metrics hooks see adds, depth, queue and work durations, retries', async () => {
  const seen = { add: 0, retry: 0, queued: 0, worked: 0, depth: [] as number[] };
  const q = new WorkQueue('t', {
    metrics: {
      add: () => seen.add++,
      retry: () => seen.retry++,
      queued: () => seen.queued++,
      worked: () => seen.worked++,
      depth: (n) => seen.depth.push(n),
    },
  });
  q.add('a');
  q.add('a');
  q.add('b');
  const k = await q.get();
  q.done(k!);
  q.addRateLimited('c');
  assert.equal(seen.add, 2);
  assert.equal(seen.retry, 1);
  assert.equal(seen.queued, 1);
  assert.equal(seen.worked, 1);
  assert.ok(seen.depth.includes(2));
  await q.shutdown();
});
