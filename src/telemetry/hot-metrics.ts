/**
 * Counters and histograms for the proxies' per-request path: a series is a plain object whose
 * numbers a request adds to, and the registry reads them only when scraped. prom-client's own
 * instruments validate and hash the label set on every increment (even through `labels()`
 * children), which cost the data plane microseconds per request; these cost an addition.
 *
 * Each instrument is registered in a prom-client Registry as a metric (name, help, type,
 * get()), so the text exposition, the JSON form and AggregatorRegistry (workers) treat it as
 * any other.
 */
import type { Registry } from 'prom-client';

type LabelValues = Record<string, string>;

interface MetricValue {
  value: number;
  labels: LabelValues;
  metricName?: string;
}

interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

export interface CounterSeries {
  value: number;
}

export interface HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

abstract class HotMetric<S> {
  readonly aggregator = 'sum' as const;
  protected readonly series = new Map<string, { labels: LabelValues; s: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    // The registry reads name, help, type, aggregator and get(); it calls reset() on reset.
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series of these label values (same order as labelNames), made on first use. */
  at(values: readonly string[]): S {
    const key = values.join('\0');
    let e = this.series.get(key);
    if (!e) {
      const labels: LabelValues = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      e = { labels, s: this.fresh() };
      this.series.set(key, e);
    }
    return e.s;
  }

  reset(): void {
    this.series.clear();
  }

  protected abstract fresh(): S;
}

export class HotCounter extends HotMetric<CounterSeries> {
  readonly type = 'counter' as const;

  protected fresh(): CounterSeries {
    return { value: 0 };
  }

  get(): Promise<MetricData> {
    const values = [...this.series.values()].map(({ labels, s }) => ({ value: s.value, labels }));
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    });
  }
}

export class HotHistogram extends HotMetric<HistogramSeries> {
  readonly type = 'histogram' as const;

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
  }

  protected fresh(): HistogramSeries {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  /** Records one observation in `s`. */
  observe(s: HistogramSeries, v: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  get(): Promise<MetricData> {
    const values: MetricValue[] = [];
    for (const { labels, s } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({
          value: cumulative,
          labels: { le: String(le), ...labels },
          metricName: `${this.name}_bucket`,
        });
      });
      values.push({
        value: s.count,
        labels: { le: '+Inf', ...labels },
        metricName: `${this.name}_bucket`,
      });
      values.push({ value: s.sum, labels, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels, metricName: `${this.name}_count` });
    }
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    });
  }
}
