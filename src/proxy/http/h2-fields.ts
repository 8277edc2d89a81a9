/**
 * RFC 9113 8.2.1 for one HTTP/2 header field, on the decoded octets: a name is lower-case
 * token characters (RFC 9110 5.6.2) or a pseudo-header (`:` and lower-case letters); a value
 * has no NUL, CR or LF and neither starts nor ends with a space or tab. A request with a field
 * that breaks it is malformed and never forwarded. Pure.
 */
/** tchar (RFC 9110 5.6.2) without the upper-case letters: what an HTTP/2 name is made of. */
const NAME_CHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")
  NAME_CHAR[c.charCodeAt(0)] = 1;

const COLON = 0x3a;
const SP = 0x20;
const HTAB = 0x09;

/** Whether one field is well-formed by RFC 9113 8.2.1. */
export function isValidField(name: Uint8Array, value: Uint8Array): boolean {
  const n = name.length;
  if (n === 0) return false;
  if (name[0] === COLON) {
    if (n === 1) return false;
    for (let i = 1; i < n; i++) {
      const c = name[i]!;
      if (c < 0x61 || c > 0x7a) return false;
    }
  } else {
    for (let i = 0; i < n; i++) if (NAME_CHAR[name[i]!] === 0) return false;
  }
  const v = value.length;
  if (v === 0) return true;
  const first = value[0]!;
  const last = value[v - 1]!;
  if (first === SP || first === HTAB || last === SP || last === HTAB) return false;
  for (let i = 0; i < v; i++) {
    const c = value[i]!;
    if (c === 0x00 || c === 0x0a || c === 0x0d) return false;
  }
  return true;
}
