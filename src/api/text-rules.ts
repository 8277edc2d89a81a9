/**
 * What Trellis accepts in the free-text parts of a registration, the same on every path (the
 * HTTP API, service definition files, agent settings, CLI flags): Consul's metadata rules, and
 * no control characters in names, tags, addresses or metadata. A CR/LF in a tag or a NUL in a
 * meta key would reach DNS answers, log lines, HTTP headers and ?filter= expressions, where it
 * can end a record or a line early; so it is refused, not escaped. Pure.
 */

/** Consul's limits (structs.go: metaKeyFormat, metaKeyMaxLength, metaValueMaxLength, ...). */
export const META_KEY_RE = /^[A-Za-z0-9_-]+$/;
export const META_KEY_MAX = 128;
export const META_VALUE_MAX_BYTES = 512;
export const META_MAX_PAIRS = 64;

/**
 * C0 controls (NUL..US, which include CR, LF and TAB), DEL, C1 controls, and the Unicode line
 * and paragraph separators, which several JSON and JavaScript consumers treat as line breaks.
 */
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** "contains a control character (U+000A at offset 3)" or undefined. */
export function controlCharProblem(s: string): string | undefined {
  const m = CONTROL_RE.exec(s);
  if (!m) return undefined;
  const code = m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
  return `contains a control character (U+${code} at offset ${m.index}); control characters are not allowed`;
}

/** Why a meta key is refused, or undefined. */
export function metaKeyProblem(k: string): string | undefined {
  if (k.length === 0) return 'a meta key cannot be empty';
  if (k.length > META_KEY_MAX)
    return `meta key is ${k.length} characters long; at most ${META_KEY_MAX} are allowed`;
  if (!META_KEY_RE.test(k)) {
    const control = controlCharProblem(k);
    return control
      ? `meta key ${control}`
      : 'meta key may contain only letters, digits, "_" and "-"';
  }
  return undefined;
}

/** Why a meta value is refused, or undefined. */
export function metaValueProblem(v: string): string | undefined {
  const bytes = utf8Length(v);
  if (bytes > META_VALUE_MAX_BYTES)
    return `meta value is ${bytes} bytes long; at most ${META_VALUE_MAX_BYTES} are allowed`;
  const control = controlCharProblem(v);
  return control ? `meta value ${control}` : undefined;
}

export function metaPairsProblem(count: number): string | undefined {
  return count > META_MAX_PAIRS
    ? `at most ${META_MAX_PAIRS} meta pairs are allowed (got ${count})`
    : undefined;
}

/** A key printed in a message: quoted, cut short, control characters escaped. */
export function quoteKey(k: string): string {
  return JSON.stringify(k.length > 40 ? `${k.slice(0, 40)}…` : k);
}

/** UTF-8 byte length without Buffer (api is pure and runs anywhere). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
