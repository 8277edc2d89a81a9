/** Number formatting and Markdown tables for the report. */

/** Milliseconds with precision that suits their size ("0.42", "12.3", "1520"). */
export function ms(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (v < 10) return v.toFixed(2);
  if (v < 100) return v.toFixed(1);
  return Math.round(v).toString();
}

/** A rate or count with thousands separators ("12,345"). */
export function int(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  return Math.round(v).toLocaleString('en-US');
}

export function seconds(msValue: number): string {
  return Number.isFinite(msValue) ? (msValue / 1000).toFixed(1) : 'n/a';
}

export function mib(bytes: number): string {
  return Number.isFinite(bytes) ? (bytes / (1024 * 1024)).toFixed(1) : 'n/a';
}

export function bytes(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KiB`;
  return `${(v / (1024 * 1024)).toFixed(1)} MiB`;
}

export type Align = 'left' | 'right';

export interface Column {
  title: string;
  align?: Align;
}

/** A GitHub-flavoured Markdown table; numeric columns are best right-aligned. */
export function table(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const head = `| ${columns.map((c) => esc(c.title)).join(' | ')} |`;
  const rule = `| ${columns.map((c) => (c.align === 'right' ? '---:' : '---')).join(' | ')} |`;
  const body = rows.map((r) => `| ${r.map(esc).join(' | ')} |`);
  return [head, rule, ...body].join('\n');
}

/** "1 entry", "3 entries": a count with its noun in the right number. */
export function count(n: number, singular: string, plural: string): string {
  return `${int(n)} ${n === 1 ? singular : plural}`;
}
