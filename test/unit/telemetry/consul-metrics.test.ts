/** The JSON /v1/agent/metrics answers, made from a real prom-client registry. */
import { expect } from 'chai';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { consulMetrics } from '../../../src/telemetry/consul-metrics.js';

describe('telemetry: Consul-shaped metrics JSON', () => {
  it('turns gauges, counters, histograms and summaries into Consul entries', async () => {
    const registry = new Registry();
    const gauge = new Gauge({ name: 'g', help: 'h', labelNames: ['k'], registers: [registry] });
    gauge.set({ k: 'a' }, 7);
    const counter = new Counter({ name: 'c_total', help: 'h', registers: [registry] });
    counter.inc(30);
    const histogram = new Histogram({
      name: 'd_seconds',
      help: 'h',
      labelNames: ['route'],
      buckets: [1, 2, 4],
      registers: [registry],
    });
    for (const v of [0.5, 1.5, 1.5, 3]) histogram.observe({ route: 'x' }, v);
    histogram.observe({ route: 'y' }, 10);
    const summary = new Summary({
      name: 's',
      help: 'h',
      percentiles: [0.01, 0.5, 0.99],
      registers: [registry],
    });
    for (const v of [1, 2, 3]) summary.observe(v);

    const out = consulMetrics(await registry.getMetricsAsJSON(), Date.UTC(2026, 0, 2, 3, 4, 5), 10);
    expect(out.Timestamp).to.equal('2026-01-02 03:04:05 +0000 UTC');
    expect(out.Points).to.deep.equal([]);
    expect(out.Gauges).to.deep.equal([{ Name: 'g', Value: 7, Labels: { k: 'a' } }]);
    expect(out.Counters).to.deep.equal([
      {
        Name: 'c_total',
        Count: 1,
        Rate: 3,
        Sum: 30,
        Min: 30,
        Max: 30,
        Mean: 30,
        Stddev: 0,
        Labels: {},
      },
    ]);
    const x = out.Samples.find((s) => s.Name === 'd_seconds' && s.Labels.route === 'x')!;
    expect(x).to.include({ Count: 4, Sum: 6.5, Mean: 1.625, Min: 0, Max: 4, Rate: 0.65 });
    expect(x.Stddev).to.be.greaterThan(0);
    // Only the +Inf bucket holds it: Max is the last finite bound.
    const y = out.Samples.find((s) => s.Name === 'd_seconds' && s.Labels.route === 'y')!;
    expect(y).to.include({ Count: 1, Sum: 10, Mean: 10, Min: 4, Max: 4, Stddev: 0 });
    const s = out.Samples.find((e) => e.Name === 's')!;
    expect(s).to.include({ Count: 3, Sum: 6, Mean: 2, Min: 1, Max: 3 });
    expect(s.Labels).to.deep.equal({});
  });
});
