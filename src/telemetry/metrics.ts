/**
 * Prometheus metrics (prom-client). Each process makes one registry; components get the
 * instruments they need from it, so tests can make their own registry and read it back.
 * Names carry the `trellis_` prefix; proxy labels follow the design's contract:
 * `source_service`, `destination_service`, `response_flags` (a reason code).
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export { Registry };

export function createRegistry(opts: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'trellis_' });
  return registry;
}

type Direction = 'inbound' | 'outbound';

/** What the proxy reports per TCP connection and per HTTP request; one object per registry. */
export interface ProxyMetrics {
  requestCompleted(
    direction: Direction,
    source: string,
    destination: string,
    code: number,
    flags: string,
    seconds: number,
    requestBytes: number,
    responseBytes: number,
  ): void;
  connectionOpened(direction: Direction, source: string, destination: string): void;
  connectionClosed(
    direction: Direction,
    source: string,
    destination: string,
    flags: string,
    bytesReceived: number,
    bytesSent: number,
  ): void;
}

export function proxyMetrics(registry: Registry): ProxyMetrics {
  const labelNames = ['direction', 'source_service', 'destination_service'] as const;
  const opened = new Counter({
    name: 'trellis_tcp_connections_opened_total',
    help: 'TCP connections a proxy accepted and authorized, by direction and services',
    labelNames,
    registers: [registry],
  });
  const closed = new Counter({
    name: 'trellis_tcp_connections_closed_total',
    help: 'TCP connections a proxy ended or refused; response_flags says why it ended them itself',
    labelNames: [...labelNames, 'response_flags'],
    registers: [registry],
  });
  const bytes = new Counter({
    name: 'trellis_tcp_bytes_total',
    help: 'Bytes a proxy carried, received from the connecting side (rx) or sent to it (tx)',
    labelNames: [...labelNames, 'flow'],
    registers: [registry],
  });
  const reqLabels = [...labelNames, 'response_code', 'response_flags'] as const;
  const requests = new Counter({
    name: 'trellis_http_requests_total',
    help: 'HTTP requests (HTTP/2 streams) a proxy handled, by direction, services, status and flags',
    labelNames: reqLabels,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'trellis_http_request_duration_seconds',
    help: 'Time from a request arriving at a proxy to its response ending',
    labelNames: reqLabels,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const requestBytes = new Counter({
    name: 'trellis_http_request_bytes_total',
    help: 'HTTP request body bytes a proxy received from clients',
    labelNames,
    registers: [registry],
  });
  const responseBytes = new Counter({
    name: 'trellis_http_response_bytes_total',
    help: 'HTTP response body bytes a proxy sent to clients',
    labelNames,
    registers: [registry],
  });
  /** Label sets are few (services x codes); caching the children skips prom-client's hashing. */
  const children = new Map<
    string,
    {
      requests: ReturnType<typeof requests.labels>;
      duration: ReturnType<typeof duration.labels>;
      rx: ReturnType<typeof requestBytes.labels>;
      tx: ReturnType<typeof responseBytes.labels>;
    }
  >();
  return {
    requestCompleted(direction, source, destination, code, flags, seconds, rxBytes, txBytes) {
      const key = `${direction}\0${source}\0${destination}\0${code}\0${flags}`;
      let c = children.get(key);
      if (!c) {
        const code_ = String(code);
        c = {
          requests: requests.labels(direction, source, destination, code_, flags),
          duration: duration.labels(direction, source, destination, code_, flags),
          rx: requestBytes.labels(direction, source, destination),
          tx: responseBytes.labels(direction, source, destination),
        };
        children.set(key, c);
      }
      c.requests.inc();
      c.duration.observe(seconds);
      if (rxBytes) c.rx.inc(rxBytes);
      if (txBytes) c.tx.inc(txBytes);
    },
    connectionOpened(direction, source, destination) {
      opened.inc({ direction, source_service: source, destination_service: destination });
    },
    connectionClosed(direction, source, destination, flags, received, sent) {
      const l = { direction, source_service: source, destination_service: destination };
      closed.inc({ ...l, response_flags: flags });
      if (received) bytes.inc({ ...l, flow: 'rx' }, received);
      if (sent) bytes.inc({ ...l, flow: 'tx' }, sent);
    },
  };
}
