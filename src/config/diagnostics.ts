/**
 * Config problems as users see them: `file:line:column: key: message`, one per problem, all of a
 * file's problems at once.
 */
import { MeshError } from '../core/index.js';
import type { Position } from './ast.js';

export interface ConfigDiagnostic {
  file: string;
  /** 1-based; 0 when the problem is not at a place in the file (unreadable file). */
  line: number;
  column: number;
  /** Dotted path of the offending key (`service.check.interval`); empty for syntax errors. */
  key: string;
  message: string;
}

/** A syntax error; same shape, with an empty key. */
export type ParseError = ConfigDiagnostic;

export function formatDiagnostic(d: ConfigDiagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.column}` : d.file;
  return d.key ? `${where}: ${d.key}: ${d.message}` : `${where}: ${d.message}`;
}

/** Orders by file, then position; stable, so problems at one spot keep their discovery order. */
export function sortDiagnostics(list: readonly ConfigDiagnostic[]): ConfigDiagnostic[] {
  return [...list].sort(
    (a, b) =>
      (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || a.line - b.line || a.column - b.column,
  );
}

/** Collects diagnostics for one file. */
export class Reporter {
  readonly diagnostics: ConfigDiagnostic[] = [];

  constructor(readonly file: string) {}

  error(pos: Position | undefined, key: string, message: string): void {
    this.diagnostics.push({
      file: this.file,
      line: pos?.line ?? 0,
      column: pos?.column ?? 0,
      key,
      message,
    });
  }
}

/** A user error carrying every diagnostic; its message lists them one per line. */
export class ConfigError extends MeshError {
  readonly diagnostics: readonly ConfigDiagnostic[];

  constructor(diagnostics: readonly ConfigDiagnostic[]) {
    const lines = diagnostics.map(formatDiagnostic);
    const head =
      diagnostics.length === 1
        ? 'invalid configuration'
        : `${diagnostics.length} configuration errors`;
    super('MESH_ERR_CONFIG', 'user', `${head}:\n${lines.join('\n')}`, { status: 400 });
    this.name = 'ConfigError';
    this.diagnostics = diagnostics;
  }
}

/** Throws a ConfigError when there is anything to report. */
export function throwIfErrors(diagnostics: readonly ConfigDiagnostic[]): void {
  if (diagnostics.length > 0) throw new ConfigError(diagnostics);
}
