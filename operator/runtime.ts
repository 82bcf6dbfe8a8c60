// How the operator process runs when deployed: the entrypoint, the V8 flags and the environment
// that tunes memory. The Dockerfile's operator target (ENTRYPOINT, ENV) and the Helm chart
// (values.yaml nodeOptions, mallocArenaMax) repeat these; test/unit/operator.runtime.test.ts keeps
// them equal, and `npm run bench:operator` runs the operator this way unless told otherwise, so its
// numbers are the deployment's.

/**
 * The process runs the JavaScript build of the operator (operator/build.ts: types stripped ahead of
 * time, so Node does not keep its TypeScript stripper in memory); relative to the build's root (the
 * image's /app). From the sources, `node operator/start.ts` runs the same code.
 */
export const ENTRYPOINT = 'operator/start.js';

/**
 * - --max-semi-space-size=1: a 1 MB young generation instead of up to 16 MB x 2 (x 3 with the
 *   scavenger's copy): the operator allocates in small, short bursts, and a large nursery only
 *   keeps garbage resident.
 * - --max-old-space-size=192: a cap on the old generation well above the live set at 10,000 scans
 *   (~60 MB), so V8 collects before growing the heap far beyond it.
 */
export const NODE_OPTIONS = '--max-semi-space-size=1 --max-old-space-size=192';

/**
 * V8 flags that Node refuses in NODE_OPTIONS, so they are on the command line (the image's
 * ENTRYPOINT; the chart runs the image's entrypoint):
 * - --optimize-for-size: V8's memory-saving mode (grows the heap less eagerly, collects and returns
 *   memory sooner): bench:operator measured RSS 134 -> 120 MB holding 3,000 scans, and no more CPU
 *   per reconcile that the benchmark could tell apart from noise.
 */
export const NODE_ARGS: readonly string[] = ['--optimize-for-size'];

/**
 * glibc malloc: at most 2 arenas instead of 8 per core. Node's threads (V8's compiler and GC
 * helpers, libuv's pool) each got an arena, and each arena keeps the high-water mark of its
 * allocations: bench:operator measured RSS 149 -> 134 MB holding 3,000 scans.
 */
export const MALLOC_ARENA_MAX = '2';
