/**
 * "Did you mean" for unknown keys: the closest known key by edit distance, when it is close enough
 * to be a likely typo rather than a different word.
 */

/** Optimal string alignment distance: Levenshtein plus adjacent swaps ("prot" -> "port" is 1). */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0]![j] = j;
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      }
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * The candidate closest to `word`, or undefined when none is near. Both sides are compared in
 * normalized form (see normalizeKey) so "Prot" and "prot_" find "port".
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = normalizeKey(word);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const n = normalizeKey(c);
    const limit = n.length <= 4 ? 1 : n.length <= 8 ? 2 : 3;
    const d = editDistance(w, n);
    if (d <= limit && d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Consul matches keys case-insensitively and ignores underscores: `check_id` = `CheckID`. */
export function normalizeKey(key: string): string {
  return key.replace(/_/g, '').toLowerCase();
}
