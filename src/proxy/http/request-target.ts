/**
 * What a request's path means, decided once: the normalized target is what intentions judge
 * and exactly what the application receives (RFC 3986 6.2.2, plus Envoy's merge_slashes).
 * Pure and allocation-free for the common target that needs no change, so any HTTP front end
 * (today node:http and node:http2, later a head-only parser) can call it per request.
 */

const UNRESERVED = /^[A-Za-z0-9._~-]$/;
const HEX2 = /^[0-9A-Fa-f]{2}$/;

/**
 * The request target as intentions must judge it and the app will receive it: origin-form,
 * repeated slashes merged (`//admin` is `/admin`), escapes of unreserved characters decoded and
 * the rest upper-cased, dot segments removed (`/%2e%2e/` is `/../`). Undefined (a 400) when it
 * cannot be made unambiguous: not origin-form; a byte outside visible ASCII; a fragment (`#`);
 * a malformed escape; `%00` anywhere (path or query); a backslash; an escaped `/` or `\` an app
 * could decode into a separator.
 */
export function normalizeTarget(target: string): string | undefined {
  if (target.charCodeAt(0) !== 47 /* '/' */) return undefined;
  let q = -1;
  let plain = true;
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 35 /* '#' */) return undefined;
    if (c === 37 /* '%' */) {
      // %00 truncates strings in C code; refused in the query as well as the path.
      if (target.charCodeAt(i + 1) === 48 && target.charCodeAt(i + 2) === 48) return undefined;
      if (q < 0) plain = false;
    } else if (q < 0) {
      if (c === 63 /* '?' */) q = i;
      else if (c === 92 /* '\\' */) return undefined;
      else if (c === 47 && i > 0) {
        const prev = target.charCodeAt(i - 1);
        if (prev === 47 || prev === 46 /* '.' */) plain = false;
      } else if (c === 46 && target.charCodeAt(i - 1) === 47) plain = false;
    }
  }
  // A trailing "/." or "/.." ends a segment without a slash after it.
  if (plain) return target;
  const raw = q < 0 ? target : target.slice(0, q);
  let path = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c !== '%') {
      path += c;
      continue;
    }
    const hex = raw.slice(i + 1, i + 3);
    if (!HEX2.test(hex)) return undefined;
    const ch = String.fromCharCode(parseInt(hex, 16));
    if (ch === '/' || ch === '\\') return undefined;
    path += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
    i += 2;
  }
  const segments = path.slice(1).split('/');
  const out: string[] = [];
  for (const s of segments) {
    if (s === '..') out.pop();
    else if (s !== '.' && s !== '') out.push(s); // '' is a repeated slash: merged
  }
  const last = segments[segments.length - 1];
  const dir = (last === '' || last === '.' || last === '..') && out.length > 0 ? '/' : '';
  return `/${out.join('/')}${dir}${q < 0 ? '' : target.slice(q)}`;
}

/** The path of a request target, without its query, for path rules. */
export function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}
