/**
 * The JSON `GET /v1/agent/metrics` answers (without `?format=prometheus`), in the shape of
 * Consul's (go-metrics' summary: `Timestamp`, `Gauges`, `Points`, `Counters`, `Samples`), made
 * from the prom-client registry's own figures. Names stay the Prometheus names.
 *
 * Consul reports the last 10 s interval; Prometheus instruments hold totals since the process
 * started, so here the interval is the process lifetime:
 *  - a gauge is its current value;
 *  - a counter is one entry whose Sum (and Min, Max, Mean) is its total, Count 1 and Rate the
 *    total per second since start;
 *  - a histogram (or summary) gives Count and Sum exactly, Mean = Sum / Count, and Min, Max
 *    and Stddev estimated from its buckets (quantiles for a summary).
 */

export interface PromMetric {
  name: string;
  /** 'counter', 'gauge', 'histogram' or 'summary' (prom-client's typings say a numeric enum). */
  type: unknown;
  values: {
    value: number;
    labels: Partial<Record<string, string | number>>;
    metricName?: string;
  }[];
}

export interface ConsulGauge {
  Name: string;
  Value: number;
  Labels: Record<string, string>;
}

export interface ConsulSample {
  Name: string;
  Count: number;
  Rate: number;
  Sum: number;
  Min: number;
  Max: number;
  Mean: number;
  Stddev: number;
  Labels: Record<string, string>;
}

export interface ConsulMetrics {
  Timestamp: string;
  Gauges: ConsulGauge[];
  Points: never[];
  Counters: ConsulSample[];
  Samples: ConsulSample[];
}

export function consulMetrics(
  metrics: readonly PromMetric[],
  nowMs: number,
  uptimeSeconds: number,
): ConsulMetrics {
  const out: ConsulMetrics = {
    Timestamp: goTime(nowMs),
    Gauges: [],
    Points: [],
    Counters: [],
    Samples: [],
  };
  const perSecond = (total: number): number => (uptimeSeconds > 0 ? total / uptimeSeconds : 0);
  for (const m of metrics) {
    if (m.type === 'gauge') {
      for (const v of m.values)
        out.Gauges.push({ Name: m.name, Value: v.value, Labels: labelStrings(v.labels) });
    } else if (m.type === 'counter') {
      for (const v of m.values)
        out.Counters.push({
          Name: m.name,
          Count: 1,
          Rate: perSecond(v.value),
          Sum: v.value,
          Min: v.value,
          Max: v.value,
          Mean: v.value,
          Stddev: 0,
          Labels: labelStrings(v.labels),
        });
    } else if (m.type === 'histogram' || m.type === 'summary') {
      for (const s of distributions(m)) out.Samples.push({ ...s, Rate: perSecond(s.Sum) });
    }
  }
  return out;
}

interface Distribution {
  labels: Record<string, string>;
  count: number;
  sum: number;
  /** Histogram: [upper bound, cumulative count]; summary: [quantile, value]. */
  points: [number, number][];
}

/** Groups a histogram's or summary's series by label set (without `le` / `quantile`). */
function distributions(m: PromMetric): Omit<ConsulSample, 'Rate'>[] {
  const byLabels = new Map<string, Distribution>();
  const histogram = m.type === 'histogram';
  const pointLabel = histogram ? 'le' : 'quantile';
  for (const v of m.values) {
    const { [pointLabel]: point, ...rest } = labelStrings(v.labels);
    const key = JSON.stringify(Object.entries(rest).sort(([a], [b]) => (a < b ? -1 : 1)));
    let d = byLabels.get(key);
    if (!d) {
      d = { labels: rest, count: 0, sum: 0, points: [] };
      byLabels.set(key, d);
    }
    const series = v.metricName ?? m.name;
    if (series === `${m.name}_sum`) d.sum = v.value;
    else if (series === `${m.name}_count`) d.count = v.value;
    else if (point !== undefined)
      d.points.push([point === '+Inf' ? Number.POSITIVE_INFINITY : Number(point), v.value]);
  }
  return [...byLabels.values()].map((d) => {
    const mean = d.count > 0 ? d.sum / d.count : 0;
    const { min, max, stddev } = histogram ? fromBuckets(d, mean) : fromQuantiles(d);
    return {
      Name: m.name,
      Count: d.count,
      Sum: d.sum,
      Min: min,
      Max: max,
      Mean: mean,
      Stddev: stddev,
      Labels: d.labels,
    };
  });
}

/**
 * From cumulative buckets: Min is the lower bound of the first non-empty bucket, Max the upper
 * bound of the last finite non-empty one, Stddev from bucket midpoints.
 */
function fromBuckets(d: Distribution, mean: number): { min: number; max: number; stddev: number } {
  const buckets = [...d.points].sort((a, b) => a[0] - b[0]);
  let prevBound = 0;
  let prevCount = 0;
  let min: number | undefined;
  let max = 0;
  let squares = 0;
  for (const [bound, cumulative] of buckets) {
    const n = cumulative - prevCount;
    if (n > 0) {
      min ??= prevBound;
      max = Number.isFinite(bound) ? bound : prevBound;
      const mid = Number.isFinite(bound) ? (prevBound + bound) / 2 : prevBound;
      squares += n * (mid - mean) ** 2;
    }
    if (Number.isFinite(bound)) prevBound = bound;
    prevCount = cumulative;
  }
  const stddev = d.count > 1 ? Math.sqrt(squares / (d.count - 1)) : 0;
  return { min: min ?? 0, max, stddev };
}

/** From quantiles: the lowest and highest quantile's values; no spread estimate. */
function fromQuantiles(d: Distribution): { min: number; max: number; stddev: number } {
  const q = d.points.filter(([, v]) => Number.isFinite(v)).sort((a, b) => a[0] - b[0]);
  return { min: q[0]?.[1] ?? 0, max: q[q.length - 1]?.[1] ?? 0, stddev: 0 };
}

function labelStrings(labels: Partial<Record<string, string | number>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (v !== undefined) out[k] = String(v);
  return out;
}

/** Go's time.Time String() in UTC, as Consul's Timestamp: `2026-01-02 15:04:05 +0000 UTC`. */
function goTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}
