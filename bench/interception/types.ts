/** What the interception benchmark and its in-namespace helper (ns-helper.ts) exchange. */
export const RESULT_MARK = 'INTERCEPTION-RESULT';
