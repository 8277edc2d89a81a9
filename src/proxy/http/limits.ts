/**
 * What one HTTP client may hold in a proxy: header sizes and counts, time to send a request
 * head, concurrent HTTP/2 streams and session memory. Generous for real traffic, small enough
 * that a hostile peer cannot grow the agent's memory or hold its sockets forever.
 */
import type { ServerOptions as Http1ServerOptions } from 'node:http';

/** Total size of a request head (Envoy's default is 60 KiB; Node's 16 KiB). */
export const MAX_HEADER_BYTES = 16 * 1024;
/** Headers per request (Envoy's default is 100). */
export const MAX_HEADER_COUNT = 100;

export const HTTP1_SERVER_LIMITS: Http1ServerOptions = {
  maxHeaderSize: MAX_HEADER_BYTES,
  /** A slow client must finish its head in this time (slowloris). */
  headersTimeout: 10_000,
  /** ... and its whole request in this time. */
  requestTimeout: 300_000,
  keepAliveTimeout: 60_000,
  insecureHTTPParser: false,
  /** How often headersTimeout and requestTimeout are checked (Node's default is 30 s). */
  connectionsCheckingInterval: 1_000,
  requireHostHeader: true,
  joinDuplicateHeaders: false,
};

/** HTTP/2 frame size and HPACK table size the proxy advertises (the protocol's defaults). */
export const H2_MAX_FRAME_SIZE = 16_384;
export const H2_HEADER_TABLE_SIZE = 4_096;
/**
 * The most octets of one encoded header block an HTTP/2 connection holds to decode it.
 * An encoded block is about as long as the header list it carries (Huffman makes it shorter),
 * so four times the header list limit leaves room for any real request.
 */
export const H2_MAX_HEADER_BLOCK_BYTES = 4 * MAX_HEADER_BYTES;
