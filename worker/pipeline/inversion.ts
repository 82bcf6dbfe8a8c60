// Step C (spec 2.3): GCG trigger inversion. Each iteration takes the top-k tokens per trigger
// position from the one-hot gradient, builds r distinct single-swap candidates never evaluated
// before in this run, scores them in batches, moves to the argmin (even when it is worse) and
// keeps the global best. Two-sided objectives (code search, Algorithm 2) build r candidates per
// side and score all r² pairs. Early stopping (an extension) ends a run when the best loss has
// not improved for `patience` iterations, falls to `lossBelow`, or its ASR on the inversion
// samples reaches `asrAtLeast`.
import { rng } from '../rng.ts';
import type { CandidateScore, Objective } from './objective.ts';

export interface GcgOptions {
  topK: number;
  candidates: number;
  iterations: number;
  seed: number;
  /** Initial trigger per side (a warm start, e.g. from the single-token screen); default: uniform from V_f (reference). */
  init?: number[][];
  patience?: number;
  lossBelow?: number;
  asrAtLeast?: number;
  /** Called after every iteration (progress bars, logs). */
  onIteration?: (s: IterationState) => void;
}

export interface IterationState {
  iteration: number;
  iterations: number;
  loss: number;
  bestLoss: number;
  bestAsr?: number;
  candidates: number;
  seconds: number;
}

export type StopReason = 'iterations' | 'patience' | 'loss' | 'asr' | 'exhausted';

export interface GcgResult {
  /** Best trigger per side (model token ids). */
  best: number[][];
  bestLoss: number;
  bestAsr?: number;
  /** Loss of the random initial trigger. */
  initialLoss: number;
  iterations: number;
  stop: StopReason;
  /** Iteration at which the best was found (0 = the initial trigger). */
  bestIteration: number;
  lossCurve: number[];
  candidatesScored: number;
  sequencesScored: number;
  seconds: { total: number; gradient: number; scoring: number };
}

/**
 * r distinct single-swap neighbours of `current`, each from that position's top-k, none in
 * `visited` (which they are added to). Gives up after a bounded number of draws, so it always
 * terminates, and returns fewer than r when the neighbourhood is (nearly) exhausted.
 */
export function singleSwapCandidates(current: readonly number[], top: readonly number[][], r: number, visited: Set<string>, random: () => number): number[][] {
  const out: number[][] = [];
  const n = current.length;
  const pool = top.reduce((s, row) => s + row.length, 0);
  const maxDraws = Math.max(100, 20 * r) + 4 * pool;
  // Adds current-with-position-i-swapped-to-token unless it is a no-op or was seen before.
  const tryAdd = (i: number, token: number) => {
    if (token === current[i]) return;
    const c = [...current];
    c[i] = token;
    const key = c.join(',');
    if (visited.has(key)) return;
    visited.add(key);
    out.push(c);
  };
  for (let draw = 0; draw < maxDraws && out.length < r; draw++) {
    const i = Math.floor(random() * n);
    const row = top[i];
    if (row.length === 0) continue;
    tryAdd(i, row[Math.floor(random() * row.length)]);
  }
  // Near exhaustion the random draws may miss the last unseen neighbours: sweep them in order.
  for (let i = 0; i < n && out.length < r; i++) {
    for (const token of top[i]) {
      if (out.length >= r) break;
      tryAdd(i, token);
    }
  }
  return out;
}

/** Runs GCG on `objective` over `vocabulary` (model ids; the one-hot coordinate space). */
export async function invert(objective: Objective, vocabulary: readonly number[], o: GcgOptions): Promise<GcgResult> {
  const random = rng(o.seed);
  const t0 = performance.now();
  let gradMs = 0;
  let scoreMs = 0;
  // Initialisation: each token uniformly from V_f (spec 2.3), seeded.
  const uniform = objective.sides.map((n) => Array.from({ length: n }, () => vocabulary[Math.floor(random() * vocabulary.length)]));
  let current = o.init ? o.init.map((t, s) => (t.length === objective.sides[s] ? [...t] : uniform[s])) : uniform;
  const visited = objective.sides.map(() => new Set<string>());
  current.forEach((t, s) => visited[s].add(t.join(',')));
  let s0 = performance.now();
  const [init] = await objective.score(current.map((t) => [t]));
  scoreMs += performance.now() - s0;
  let best: number[][] = current.map((t) => [...t]);
  let bestScore: CandidateScore = init;
  let bestIteration = 0;
  let since = 0;
  let stop: StopReason = 'iterations';
  const lossCurve: number[] = [];
  let candidatesScored = 1;
  let sequencesScored = objective.lastSequences;
  let it = 0;
  const reached = () =>
    o.lossBelow !== undefined && bestScore.loss <= o.lossBelow ? 'loss' : o.asrAtLeast !== undefined && (bestScore.asr ?? 0) >= o.asrAtLeast ? 'asr' : undefined;
  const early = reached();
  if (early) stop = early;
  while (!early && it < o.iterations) {
    it++;
    s0 = performance.now();
    const top = await objective.topK(current, o.topK);
    gradMs += performance.now() - s0;
    const perSide = current.map((t, s) => {
      const ids = top[s].map((row) => row.map((j) => vocabulary[j]));
      return singleSwapCandidates(t, ids, o.candidates, visited[s], random);
    });
    // A side with no new neighbour keeps its current value (two-sided search); one side: done.
    const usable = perSide.map((c, s) => (c.length > 0 ? c : objective.sides.length > 1 ? [current[s]] : []));
    if (usable.some((c) => c.length === 0) || perSide.every((c) => c.length === 0)) {
      stop = 'exhausted';
      it--;
      break;
    }
    s0 = performance.now();
    const scores = await objective.score(usable);
    scoreMs += performance.now() - s0;
    sequencesScored += objective.lastSequences;
    candidatesScored += scores.length;
    let j = 0;
    for (let x = 1; x < scores.length; x++) if (scores[x].loss < scores[j].loss) j = x;
    // Decode the flat index into one candidate per side.
    const pick: number[][] = [];
    let rest = j;
    for (let s = usable.length - 1; s >= 0; s--) {
      pick[s] = usable[s][rest % usable[s].length];
      rest = Math.floor(rest / usable[s].length);
    }
    current = pick;
    lossCurve.push(scores[j].loss);
    if (scores[j].loss < bestScore.loss) {
      bestScore = scores[j];
      best = pick.map((t) => [...t]);
      bestIteration = it;
      since = 0;
    } else since++;
    o.onIteration?.({ iteration: it, iterations: o.iterations, loss: scores[j].loss, bestLoss: bestScore.loss, bestAsr: bestScore.asr, candidates: scores.length, seconds: (performance.now() - t0) / 1000 });
    const r = reached();
    if (r) {
      stop = r;
      break;
    }
    if (o.patience && o.patience > 0 && since >= o.patience) {
      stop = 'patience';
      break;
    }
  }
  return {
    best,
    bestLoss: bestScore.loss,
    bestAsr: bestScore.asr,
    initialLoss: init.loss,
    iterations: it,
    stop,
    bestIteration,
    lossCurve,
    candidatesScored,
    sequencesScored,
    seconds: { total: (performance.now() - t0) / 1000, gradient: gradMs / 1000, scoring: scoreMs / 1000 },
  };
}
