/** service-splitter: weighted splits of a service's traffic. */
import { err, Fields, indexPath, prune, type Shape } from './fields.js';
import {
  COMMON_FIELDS,
  COMMON_READ_ONLY,
  header,
  headerModifiers,
  serviceName,
  subsetName,
} from './shared.js';
import type { ServiceSplit, ServiceSplitterEntry } from './types.js';

export const SPLIT_SHAPE: Shape = {
  fields: ['Weight', 'Service', 'ServiceSubset', 'RequestHeaders', 'ResponseHeaders'],
  tenancy: true,
};

export const SERVICE_SPLITTER_SHAPE: Shape = {
  fields: [...COMMON_FIELDS, 'Splits'],
  readOnly: COMMON_READ_ONLY,
  tenancy: true,
};

export function serviceSplitter(f: Fields): ServiceSplitterEntry {
  const head = header(f, 'service-splitter');
  const raw = f.list('Splits') ?? [];
  if (raw.length === 0) throw f.err('Splits', 'at least one split is required');
  let total = 0;
  const seen = new Map<string, number>();
  const splits = raw.map((item, i): ServiceSplit => {
    const s = Fields.of(item, indexPath(f.at('Splits'), i), SPLIT_SHAPE);
    const weight = s.num('Weight') ?? 0;
    if (weight < 0 || weight > 100)
      throw s.err('Weight', `must be between 0 and 100, not ${weight}`);
    // Compared in hundredths as integers, so 33.33 * 3 is exactly 99.99, not nearly 100.
    const hundredths = Math.round(weight * 100);
    if (Math.abs(weight * 100 - hundredths) > 1e-6)
      throw s.err(
        'Weight',
        `${weight} has more than two decimal places (weights go in steps of 0.01)`,
      );
    total += hundredths;
    const split = prune({
      Weight: weight,
      Service: serviceName(s, 'Service'),
      ServiceSubset: subsetName(s, 'ServiceSubset'),
      RequestHeaders: headerModifiers(s, 'RequestHeaders'),
      ResponseHeaders: headerModifiers(s, 'ResponseHeaders'),
    });
    const service = split.Service ?? head.Name;
    const key = `${service}\u0000${split.ServiceSubset ?? ''}`;
    const first = seen.get(key);
    if (first !== undefined)
      throw err(
        s.path,
        `duplicate split to service "${service}"${split.ServiceSubset ? ` subset "${split.ServiceSubset}"` : ''} (same as Splits[${first}])`,
      );
    seen.set(key, i);
    return split;
  });
  if (total !== 10000) throw f.err('Splits', `weights sum to ${total / 100}, must sum to 100`);
  return { ...head, Splits: splits };
}
