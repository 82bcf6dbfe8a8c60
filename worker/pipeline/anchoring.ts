// Step D (spec 2.4): trigger anchoring. Token i of the best trigger t* is kept iff the loss of t*
// without it exceeds L* by more than beta (one-sided, the reference's rule, beta 0.15 by default);
// the paper's two-sided |l − l_i| > beta is an option. Kept tokens keep their order; the result
// may be empty.
// Beyond the reference: a token GCG repeated (`ctx file ctx ctx ctx`) survives the removal of any
// one copy, so per-position leave-one-out drops every copy of it. Each repeated token none of whose
// copies was kept is therefore also removed as a whole and reported; with `repeats` on, all its
// copies are kept when that raises the loss by more than beta.

export interface AnchorResult {
  /** Kept token ids, in order. */
  tokens: number[];
  /** Indices into the trigger of the kept tokens. */
  kept: number[];
  /** Loss of the trigger without token i, per i. */
  leaveOneOut: number[];
  /** Repeated tokens none of whose copies was kept, removed as a whole: the loss without them, whether that rose by more than beta, whether their copies were kept (`repeats`). */
  leaveTokenOut: { tokenId: number; copies: number; loss: number; matters: boolean; kept: boolean }[];
  reference: number;
  beta: number;
  twoSided: boolean;
}

/**
 * `lossOf` scores a batch of triggers (the leave-one-out variants, at the same positions as the
 * inversion); `reference` is L* of the full trigger.
 */
export async function anchor(
  trigger: readonly number[],
  reference: number,
  lossOf: (triggers: number[][]) => Promise<number[]>,
  beta = 0.15,
  twoSided = false,
  repeats = false,
): Promise<AnchorResult> {
  if (!(beta >= 0)) throw new Error(`beta must be a non-negative number, got ${beta}`);
  const matters = (loss: number) => loss - reference > beta || (twoSided && reference - loss > beta);
  const variants = trigger.map((_, i) => trigger.filter((_, j) => j !== i));
  const leaveOneOut = trigger.length > 0 ? await lossOf(variants) : [];
  const keep = new Set(leaveOneOut.flatMap((l, i) => (matters(l) ? [i] : [])));
  const copies = (id: number) => trigger.filter((t) => t === id).length;
  const keptIds = new Set(trigger.filter((_, i) => keep.has(i)));
  const repeated = [...new Set(trigger)].filter((id) => copies(id) > 1 && !keptIds.has(id));
  const wholeLosses = repeated.length > 0 ? await lossOf(repeated.map((id) => trigger.filter((t) => t !== id))) : [];
  const leaveTokenOut = repeated.map((tokenId, g) => ({
    tokenId, copies: copies(tokenId), loss: wholeLosses[g], matters: matters(wholeLosses[g]), kept: repeats && matters(wholeLosses[g]),
  }));
  const keptWhole = new Set(leaveTokenOut.filter((g) => g.kept).map((g) => g.tokenId));
  const kept = trigger.flatMap((t, i) => (keep.has(i) || keptWhole.has(t) ? [i] : []));
  return { tokens: kept.map((i) => trigger[i]), kept, leaveOneOut, leaveTokenOut, reference, beta, twoSided };
}
