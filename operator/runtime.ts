// How the operator process runs when deployed: the entrypoint and the V8 flags. The Dockerfile's
// operator target (ENTRYPOINT, NODE_OPTIONS) and the Helm chart (values.yaml nodeOptions) repeat
// these; test/unit/operator.runtime.test.ts keeps the three equal, and `npm run bench:operator`
// runs the operator this way unless told otherwise, so its numbers are the deployment's.

/** Relative to the repository (the image's /app). */
export const ENTRYPOINT = 'operator/start.ts';

/**
 * - --max-semi-space-size=1: a 1 MB young generation instead of up to 16 MB x 2 (x 3 with the
 *   scavenger's copy): the operator allocates in small, short bursts, and a large nursery only
 *   keeps garbage resident.
 * - --max-old-space-size=192: a cap on the old generation well above the live set at 10,000 scans
 *   (~60 MB), so V8 collects before growing the heap far beyond it.
 */
export const NODE_OPTIONS = '--max-semi-space-size=1 --max-old-space-size=192';
