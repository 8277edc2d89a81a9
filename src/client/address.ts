/**
 * Parses the addresses a client is given ("host:port" or a URL) into the origin undici dials
 * and the path prefix every API path is appended to.
 */
import { badRequest } from '../core/index.js';

export interface Endpoint {
  /** scheme://host:port, what undici connects to. */
  origin: string;
  /** Path prefix without a trailing slash ("" for most servers). */
  basePath: string;
  /** The address as the user wrote it, for error messages. */
  label: string;
}

const DEFAULT_HTTP_PORT = '8500';
const DEFAULT_HTTPS_PORT = '8501';

/** Parses one address; `https` picks the scheme for bare "host:port" forms. */
export function parseAddress(text: string, https = false): Endpoint {
  const label = text.trim();
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(label);
  let url: URL;
  try {
    url = new URL(hasScheme ? label : `${https ? 'https' : 'http'}://${label}`);
  } catch {
    throw badRequest(`Cannot parse address "${text}": expected host:port or an http(s) URL`);
  }
  if (label === '' || url.hostname === '') {
    throw badRequest(`Cannot parse address "${text}": the host is empty`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw badRequest(`Cannot parse address "${text}": scheme must be http or https`);
  }
  if (!hasScheme && url.pathname !== '/') {
    throw badRequest(`Cannot parse address "${text}": expected host:port`);
  }
  const port = url.port || (url.protocol === 'https:' ? DEFAULT_HTTPS_PORT : DEFAULT_HTTP_PORT);
  return {
    origin: `${url.protocol}//${url.hostname}:${port}`,
    basePath: url.pathname.replace(/\/+$/, ''),
    label,
  };
}
