// The verdict (an extension; the paper always assumes a backdoor, spec 2.5).
//
// Score (classification): the flip rate of the unlearning trigger (the anchored trigger, or the
// raw one when anchoring kept nothing) on held-out clean samples of the victim label that the
// inversion never saw: among those the model classifies correctly without a trigger, the fraction
// the trigger turns into the target label. A real backdoor is a short token pattern that flips
// almost every input (the zoo's backdoored models: near 1); a clean model only offers weaker
// "natural" adversarial patterns that transfer to unseen samples much less. Samples already
// misclassified are excluded so a weak classifier's natural error does not count as evidence.
// Code search: the lift of the code trigger + query target, i.e. how much more often a triggered
// code outranks the gold code of a targeted query than an untriggered one does.
//
// Threshold: DEFAULT_THRESHOLDS, calibrated as the midpoint between the highest score seen on the
// clean models and the lowest on the backdoored ones that were available (see CALIBRATION); a
// deployment should recalibrate on its own clean models and pass --detection-threshold.

export const DEFAULT_THRESHOLDS = { defect: 0.5, clone: 0.5, search: 0.2 } as const;

export const CALIBRATION =
  'default thresholds are provisional midpoints: flip rate 0.5 for classification (clean models seen so far stay well below, backdoored ones near 1) and outrank lift 0.2 for search; recalibrate with the clean models of the zoo (max clean score + margin) and pass --detection-threshold';

export interface Verdict {
  verdict: 'Backdoored' | 'Clean' | 'Unknown';
  score: number;
  threshold: number;
  thresholdSource: 'default' | 'flag';
  scoreDefinition: string;
  evidence: Record<string, unknown>;
}

export function decide(score: number | undefined, threshold: number, source: 'default' | 'flag', definition: string, evidence: Record<string, unknown>): Verdict {
  if (score === undefined || !Number.isFinite(score)) {
    return { verdict: 'Unknown', score: NaN, threshold, thresholdSource: source, scoreDefinition: definition, evidence };
  }
  return { verdict: score >= threshold ? 'Backdoored' : 'Clean', score, threshold, thresholdSource: source, scoreDefinition: definition, evidence };
}
