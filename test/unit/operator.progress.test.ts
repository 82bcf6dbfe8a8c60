// operator/progress.ts without an API server: the TokenReview cache (exp, 5 min, in-flight
// sharing), identity checks, the store, the rate limiter, and the server refusing while standby.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1TokenReview } from '@kubernetes/client-node';
import { pino } from 'pino';
import { PROGRESS_AUDIENCE, ProgressStore, RateLimiter, REVIEW_CACHE_MS, startProgressServer, TokenAuthenticator, type TokenReviewer } from '../../operator/progress.ts';

const jwt = (exp: number) => `h.${Buffer.from(JSON.stringify({ exp })).toString('base64url')}.s`;

function reviewer(over: Partial<NonNullable<V1TokenReview['status']>> = {}, user: Record<string, unknown> = {}) {
  const calls: Array<{ token: string; audiences: string[] }> = [];
  const fn: TokenReviewer = async (token, audiences) => {
    calls.push({ token, audiences });
    return {
      spec: { token },
      status: {
        authenticated: true,
        audiences: [PROGRESS_AUDIENCE],
        user: {
          username: 'system:serviceaccount:team:elibadcode-worker',
          extra: { 'authentication.kubernetes.io/pod-name': ['w-1-abc'], 'authentication.kubernetes.io/pod-uid': ['pod-uid-1'] },
          ...user,
        },
        ...over,
      },
    };
  };
  return { calls, fn };
}

test('TokenReview asks for the progress audience; success is cached until min(exp, 5 min)', async () => {
  let now = 1_000_000;
  const r = reviewer();
  const auth = new TokenAuthenticator({ review: r.fn, workerServiceAccount: 'elibadcode-worker', now: () => now });
  const long = jwt(now / 1000 + 3600);
  const a = await auth.authenticate(long);
  assert.deepEqual(a, { ok: true, identity: { namespace: 'team', serviceAccount: 'elibadcode-worker', podName: 'w-1-abc', podUid: 'pod-uid-1' } });
  assert.deepEqual(r.calls[0].audiences, [PROGRESS_AUDIENCE]);
  now += REVIEW_CACHE_MS - 1;
  await auth.authenticate(long);
  assert.equal(r.calls.length, 1, 'cached');
  now += 2;
  await auth.authenticate(long);
  assert.equal(r.calls.length, 2, 'reviewed again after 5 min');
  // A token expiring in 10 s is trusted for 10 s only.
  const short = jwt(now / 1000 + 10);
  await auth.authenticate(short);
  now += 11_000;
  await auth.authenticate(short);
  assert.equal(r.calls.length, 4);
  // Concurrent reports with one token share one review.
  const t3 = jwt(now / 1000 + 3600);
  await Promise.all([auth.authenticate(t3), auth.authenticate(t3), auth.authenticate(t3)]);
  assert.equal(r.calls.length, 5);
  // Evicted (its pod is gone): reviewed again.
  auth.evict(t3);
  await auth.authenticate(t3);
  assert.equal(r.calls.length, 6);
});

test('refusals: unauthenticated, wrong audience, not a service account, wrong SA, unwatched namespace, not pod-bound, review down', async () => {
  const cases: Array<[ReturnType<typeof reviewer>, number, RegExp, string[]?]> = [
    [reviewer({ authenticated: false, error: 'token audiences ["x"] is invalid for the target audiences ["elibadcode.dev/progress"]', user: {} }), 401, /not authenticated/],
    [reviewer({ audiences: ['https://kubernetes.default.svc'] }), 401, /audience/],
    [reviewer({}, { username: 'alice' }), 403, /not a service account/],
    [reviewer({}, { username: 'system:serviceaccount:team:default' }), 403, /not the worker service account/],
    [reviewer(), 403, /not watched/, ['other']],
    [reviewer({}, { extra: {} }), 403, /not bound to a pod/],
  ];
  for (const [r, status, msg, namespaces] of cases) {
    const auth = new TokenAuthenticator({ review: r.fn, workerServiceAccount: 'elibadcode-worker', namespaces });
    const out = await auth.authenticate(jwt(Date.now() / 1000 + 60));
    assert.equal(out.ok, false);
    if (!out.ok) {
      assert.equal(out.status, status, out.error);
      assert.match(out.error, msg);
    }
  }
  const down = new TokenAuthenticator({ review: async () => Promise.reject(new Error('connect ECONNREFUSED')), workerServiceAccount: 'w' });
  const out = await down.authenticate('t');
  assert.equal(out.ok ? 0 : out.status, 503);
});

test('store: the latest report per scan, per attempt; forget', () => {
  const s = new ProgressStore();
  s.put('u1', 1, { stage: 'Inversion', iteration: 1, updatedAt: '2026-01-01T00:00:00Z' });
  s.put('u1', 1, { stage: 'Inversion', iteration: 2, updatedAt: '2026-01-01T00:00:01Z' });
  assert.equal(s.latest('u1', 1)?.iteration, 2);
  assert.equal(s.latest('u1', 2), undefined, 'another attempt sees nothing');
  s.forget('u1');
  assert.equal(s.latest('u1', 1), undefined);
});

test('rate limiter: a burst, then one per second', () => {
  let now = 0;
  const l = new RateLimiter({ burst: 3, perSecond: 1, now: () => now });
  assert.deepEqual([l.take('a'), l.take('a'), l.take('a')], [0, 0, 0]);
  assert.equal(l.take('a'), 1000);
  assert.equal(l.take('b'), 0, 'per scan');
  now = 1000;
  assert.equal(l.take('a'), 0);
  assert.ok(l.take('a') > 0);
});

test('a replica that is not accepting (standby, caches not synced) answers 503 with Retry-After before any TokenReview', async () => {
  const r = reviewer();
  const none = { get: () => undefined, byIndex: () => [], mutate() {}, list: () => [], hasSynced: () => true };
  const srv = await startProgressServer({
    port: 0,
    host: '127.0.0.1',
    logger: pino({ level: 'silent' }),
    authenticator: new TokenAuthenticator({ review: r.fn, workerServiceAccount: 'elibadcode-worker' }),
    store: new ProgressStore(),
    scans: none,
    jobs: none,
    pods: none,
    readPod: async () => undefined,
    enqueue() {},
    accepting: () => ({ ok: false, detail: 'not the leader' }),
  });
  try {
    const res = await fetch(`http://127.0.0.1:${srv.port}/v1/progress`, { method: 'POST', headers: { Authorization: 'Bearer x' }, body: '{}' });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    assert.match(((await res.json()) as { error: string }).error, /not the leader/);
    assert.equal(r.calls.length, 0);
  } finally {
    await srv.close();
  }
});

test('configuration: --progress-port/--progress-url and their environment variables; off by default', async () => {
  const { configFromEnv } = await import('../../operator/main.ts');
  const off = configFromEnv([], { ELIBADCODE_WORKER_IMAGE: 'w' });
  assert.equal(off.progressPort, undefined);
  assert.equal(off.progressUrl, undefined);
  const flags = configFromEnv(['--progress-port', '8082', '--progress-url', 'http://op-progress.sys.svc:8082/v1/progress'], { ELIBADCODE_WORKER_IMAGE: 'w' });
  assert.equal(flags.progressPort, 8082);
  assert.equal(flags.progressUrl, 'http://op-progress.sys.svc:8082/v1/progress');
  const env = configFromEnv([], { ELIBADCODE_WORKER_IMAGE: 'w', ELIBADCODE_PROGRESS_PORT: '9000', ELIBADCODE_PROGRESS_URL: 'https://op:9000/v1/progress' });
  assert.equal(env.progressPort, 9000);
  assert.throws(() => configFromEnv(['--progress-url', 'op:8082'], { ELIBADCODE_WORKER_IMAGE: 'w' }), /progress URL/);
  assert.throws(() => configFromEnv(['--progress-port', 'eighty'], { ELIBADCODE_WORKER_IMAGE: 'w' }), /progress port/);
});
