/**
 * Prometheus metrics (prom-client). Each process makes one registry; components get the
 * instruments they need from it, so tests can make their own registry and read it back.
 * Names carry the `trellis_` prefix; proxy labels follow the design's contract:
 * `source_service`, `destination_service`, `response_flags` (a reason code).
 */
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import {
  HotCounter,
  HotHistogram,
  type CounterSeries,
  type HistogramSeries,
} from './hot-metrics.js';

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
  // Per-request instruments: plain numbers read at scrape time (hot-metrics.ts).
  const requests = new HotCounter(
    'trellis_http_requests_total',
    'HTTP requests (HTTP/2 streams) a proxy handled, by direction, services, status and flags',
    reqLabels,
    registry,
  );
  const duration = new HotHistogram(
    'trellis_http_request_duration_seconds',
    'Time from a request arriving at a proxy to its response ending',
    reqLabels,
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registry,
  );
  const requestBytes = new HotCounter(
    'trellis_http_request_bytes_total',
    'HTTP request body bytes a proxy received from clients',
    labelNames,
    registry,
  );
  const responseBytes = new HotCounter(
    'trellis_http_response_bytes_total',
    'HTTP response body bytes a proxy sent to clients',
    labelNames,
    registry,
  );
  interface PairSeries {
    rx: CounterSeries;
    tx: CounterSeries;
    /** By status code, then flags. */
    outcomes: Map<number, Map<string, { requests: CounterSeries; duration: HistogramSeries }>>;
  }
  /**
   * A request's series, found through maps keyed by the values themselves (the service names
   * are the plan's own strings): no key string is built per request.
   */
  const pairs = new Map<string, Map<string, Map<string, PairSeries>>>();
  const pairOf = (direction: Direction, source: string, destination: string): PairSeries => {
    let bySource = pairs.get(direction);
    if (!bySource) pairs.set(direction, (bySource = new Map()));
    let byDestination = bySource.get(source);
    if (!byDestination) bySource.set(source, (byDestination = new Map()));
    let p = byDestination.get(destination);
    if (!p) {
      const labels = [direction, source, destination];
      p = { rx: requestBytes.at(labels), tx: responseBytes.at(labels), outcomes: new Map() };
      byDestination.set(destination, p);
    }
    return p;
  };
  return {
    requestCompleted(direction, source, destination, code, flags, seconds, rxBytes, txBytes) {
      const p = pairOf(direction, source, destination);
      let byFlags = p.outcomes.get(code);
      if (!byFlags) p.outcomes.set(code, (byFlags = new Map()));
      let c = byFlags.get(flags);
      if (!c) {
        const labels = [direction, source, destination, String(code), flags];
        c = { requests: requests.at(labels), duration: duration.at(labels) };
        byFlags.set(flags, c);
      }
      c.requests.value++;
      duration.observe(c.duration, seconds);
      p.rx.value += rxBytes;
      p.tx.value += txBytes;
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
