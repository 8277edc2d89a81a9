/**
 * The regular expressions of `matches` / `not matches` filters, L7 intention permissions and
 * config entries: RE2 syntax (what Consul, in Go, accepts), run by re2js, a port of RE2/J whose
 * matching time is linear in the subject for any pattern (bench/libraries.ts measured it against
 * the matcher we had; docs/architecture.md, "Dependencies and why").
 *
 * Why not JavaScript's RegExp: V8 backtracks, so nested repeats such as `(a+)+$` are exponential
 * and even `.*.*.*x` takes seconds on a 256-character string: a caller of `?filter=` or an
 * intention author could stall the event loop. RE2 has neither backreferences nor lookaround,
 * which is what makes a linear-time matcher possible.
 *
 * What this adapter adds to re2js: our limits (pattern length, compiled program size), a cap on
 * the memory each compiled pattern's lazy DFA may keep (re2js allows 8 MiB, and the intention
 * memo holds up to 1024 patterns), and error messages that say what RE2 lacks and where.
 */
import { RE2JS, RE2JSException, RE2JSSyntaxException } from 're2js';

export const MAX_PATTERN_LENGTH = 256;
export const MAX_PROGRAM_SIZE = 2000;
/** Bytes (re2js's estimate) one pattern's DFA state cache may hold before it starts over. */
export const MAX_DFA_BYTES = 512 * 1024;

export type RegexResult =
  { ok: true; size: number; test: (subject: string) => boolean } | { ok: false; reason: string };

/**
 * Compiles an RE2 pattern. `search` (the default) finds a match anywhere in the subject, as Go's
 * MatchString does; `whole` matches only the entire subject, as Envoy's safe_regex does.
 */
export function compileRegex(pattern: string, mode: 'search' | 'whole' = 'search'): RegexResult {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return {
      ok: false,
      reason: `regular expression is ${pattern.length} characters long (limit ${MAX_PATTERN_LENGTH})`,
    };
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    if (err instanceof RE2JSSyntaxException) return { ok: false, reason: explain(pattern, err) };
    if (err instanceof RE2JSException) return { ok: false, reason: err.message };
    throw err;
  }
  const program = re.re2();
  const size = program.numberOfInstructions() as number;
  if (size > MAX_PROGRAM_SIZE) {
    return {
      ok: false,
      reason: `regular expression is too large once repeats are expanded (limit ${MAX_PROGRAM_SIZE} instructions)`,
    };
  }
  // re2js sizes the DFA's budget when it builds it and restores it on every cache reset; these
  // fields are declared in its typings. The version is pinned and a unit test checks the cap.
  const dfa = program.dfa;
  dfa.maxMem = MAX_DFA_BYTES;
  dfa.stateBudget = MAX_DFA_BYTES;
  dfa.memBudget = Math.min(dfa.memBudget, MAX_DFA_BYTES);
  const test = mode === 'whole' ? (s: string) => re.matches(s) : (s: string) => re.test(s);
  return { ok: true, size, test };
}

/** re2js's message (Go's wording) with the position in the pattern; what RE2 lacks is named. */
function explain(pattern: string, err: RE2JSSyntaxException): string {
  const snippet = err.input ?? '';
  let what = snippet ? `${err.error}: \`${snippet}\`` : err.error;
  if (/^\\([1-9]|k)/.test(snippet)) what = 'backreferences are not supported';
  else if (/^\(\?(=|!|<=|<!)/.test(snippet)) what = 'lookaround assertions are not supported';
  const at = snippet ? pattern.indexOf(snippet) : -1;
  return at >= 0 ? `${what} at pattern character ${at + 1}` : what;
}
