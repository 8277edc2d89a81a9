/**
 * Prometheus metrics (prom-client). Each process makes one registry; components get the
 * instruments they need from it, so tests can make their own registry and read it back.
 * Names carry the `trellis_` prefix; proxy labels follow the design's contract:
 * `source_service`, `destination_service`, `response_flags` (a reason code).
 */
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

export { Registry };

export function createRegistry(opts: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'trellis_' });
  return registry;
}

type Direction = 'inbound' | 'outbound';

/** What the proxy reports per TCP connection; one object per registry. */
export interface ProxyMetrics {
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
  return {
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
