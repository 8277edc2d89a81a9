/** Why a config entry write or delete answered false: only a check-and-set can fail so. */
export function casRefusal(cas: number | undefined): string {
  if (cas === undefined) return '';
  return cas === 0
    ? ' (check-and-set failed: --cas 0 writes only new entries, and this one exists)'
    : ` (check-and-set failed: its ModifyIndex is no longer ${cas})`;
}
