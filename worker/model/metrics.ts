// Evaluation metrics of the three CodeXGLUE tasks.

export function accuracy(predicted: number[], gold: number[]): number {
  if (gold.length === 0) return NaN;
  return predicted.filter((p, i) => p === gold[i]).length / gold.length;
}

/** F1 of the positive class (label 1), as CodeXGLUE reports for clone detection. */
export function f1(predicted: number[], gold: number[], positive = 1): number {
  let tp = 0, fp = 0, fn = 0;
  predicted.forEach((p, i) => {
    if (p === positive && gold[i] === positive) tp++;
    else if (p === positive) fp++;
    else if (gold[i] === positive) fn++;
  });
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/** Mean reciprocal rank: scores[i][j] is query i against candidate j; candidate i is the right answer. */
export function mrr(scores: number[][]): number {
  if (scores.length === 0) return NaN;
  let total = 0;
  scores.forEach((row, i) => {
    const rank = 1 + row.filter((s, j) => j !== i && s > row[i]).length;
    total += 1 / rank;
  });
  return total / scores.length;
}

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Rounds for reports (4 decimals by default). */
export function round(x: number, digits = 4): number {
  return Number(x.toFixed(digits));
}
