/**
 * THPC proportional rounds: when the nodes needed exceed scaleOutNodeThreshold, a round launches
 * ceil(needed × scaleOutRatio / 100); otherwise all of them.
 * ratio 50, threshold 0, 100 needed → 50, 25, 13, 6, 3, 2, 1; threshold 20 → 50, 25, 13, 12.
 */
export function roundSize(needed: number, scaleOutRatio: number, scaleOutNodeThreshold: number): number {
  if (needed <= 0) return 0;
  if (needed <= scaleOutNodeThreshold) return needed;
  // Integer ceiling: needed and ratio are whole numbers.
  return Math.floor((needed * scaleOutRatio + 99) / 100);
}
