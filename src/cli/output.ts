/**
 * How commands print: aligned tables for people, pretty JSON for programs.
 */

export type OutputFormat = 'table' | 'json';

/** Gap between columns. */
const GAP = '  ';

/**
 * Formats rows under headers in left-aligned columns. Cells are flattened to one line so a
 * stray newline in server data cannot break the layout; the last column is not padded.
 */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const all = [headers, ...rows].map((row) => row.map(oneLine));
  const widths = headers.map((_, col) => Math.max(...all.map((row) => (row[col] ?? '').length)));
  return all
    .map((row) =>
      headers
        .map((_, col) => {
          const cell = row[col] ?? '';
          return col === headers.length - 1 ? cell : cell.padEnd(widths[col]!);
        })
        .join(GAP)
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

/** Pretty-printed JSON with a final newline. */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** One compact JSON document per line, for streams (watch --format json). */
export function formatJsonLine(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n\t]+/g, ' ');
}
