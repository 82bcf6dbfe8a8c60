// Step D (spec 2.4): trigger anchoring. Token i of the best trigger t* is kept iff the loss of t*
// without it exceeds L* by more than beta (one-sided, the reference's rule, beta 0.15 by default);
// the paper's two-sided |l − l_i| > beta is an option. Kept tokens keep their order; the result
// may be empty.

export interface AnchorResult {
  /** Kept token ids, in order. */
  tokens: number[];
  /** Indices into the trigger of the kept tokens. */
  kept: number[];
  /** Loss of the trigger without token i, per i. */
  leaveOneOut: number[];
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
): Promise<AnchorResult> {
  if (!(beta >= 0)) throw new Error(`beta must be a non-negative number, got ${beta}`);
  const variants = trigger.map((_, i) => trigger.filter((_, j) => j !== i));
  const losses = trigger.length > 0 ? await lossOf(variants) : [];
  const kept: number[] = [];
  losses.forEach((l, i) => {
    const d = l - reference;
    if (d > beta || (twoSided && -d > beta)) kept.push(i);
  });
  return { tokens: kept.map((i) => trigger[i]), kept, leaveOneOut: losses, reference, beta, twoSided };
}
