/**
 * Reading service definitions from text, files and directories. A file with any error contributes
 * no services, checks or settings, so callers that go on despite errors never act on half a file.
 * Files in a config dir may also hold agent settings (agent-settings.ts); text given to
 * parseServiceDefinitions (`trellis services register`) holds definitions only.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckRegistration, ServiceRegistration } from '../api/index.js';
import { describeError } from '../core/index.js';
import {
  decodeConfigFileAt,
  mergeSettings,
  type AgentSettings,
  type LocatedConfigFile,
} from './agent-settings.js';
import { sortDiagnostics, type ConfigDiagnostic } from './diagnostics.js';
import { parseConfigText, type ParseResult } from './parse.js';
import {
  decodeServiceDefinitionsAt,
  type Located,
  type LocatedDefinitions,
} from './service-definition.js';

export interface ServiceDefinitions {
  services: ServiceRegistration[];
  checks: CheckRegistration[];
  errors: ConfigDiagnostic[];
}

/** What a config dir (or one of its files) holds: definitions and agent settings. */
export interface ConfigDirContents extends ServiceDefinitions {
  settings: AgentSettings;
}

/** Parses and decodes one service definition file's text (HCL or JSON, by name or content). */
export function parseServiceDefinitions(text: string, fileName: string): ServiceDefinitions {
  const parsed = parseConfigText(text, fileName);
  if (parsed.errors.length > 0) return { services: [], checks: [], errors: parsed.errors };
  const result = decodeServiceDefinitionsAt(parsed.root, fileName);
  return unlocate(withoutDuplicates(result.errors.length > 0 ? empty(result.errors) : result));
}

/** Parses and decodes one config-dir file's text: definitions and settings. */
export function parseConfigFile(text: string, fileName: string): ConfigDirContents {
  return settle(decodeFile(parseConfigText(text, fileName), fileName));
}

/** Loads one config-dir file. */
export async function loadConfigFile(path: string): Promise<ConfigDirContents> {
  return settle(await loadLocated(path));
}

/**
 * Loads every `*.hcl` and `*.json` file of a directory, in name order. Settings merge across
 * files; a setting given two different values is an error at the later place.
 */
export async function loadConfigDir(dir: string): Promise<ConfigDirContents> {
  let names: string[];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries
      .filter((e) => !e.isDirectory() && /\.(hcl|json)$/i.test(e.name))
      .map((e) => e.name);
  } catch (err) {
    return { services: [], checks: [], errors: [ioError(dir, err)], settings: {} };
  }
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const files = await Promise.all(
    names.map((n) => loadLocated(join(dir, n)).then(withoutFileDuplicates)),
  );
  const { settings, errors: conflicts } = mergeSettings(files.map((f) => f.settings));
  const merged: LocatedDefinitions = {
    services: files.flatMap((f) => f.services),
    checks: files.flatMap((f) => f.checks),
    errors: files.flatMap((f) => f.errors),
  };
  // Across files: each file is already clean on its own.
  return { ...unlocate(withoutDuplicates(merged, conflicts)), settings };
}

function settle(located: LocatedConfigFile): ConfigDirContents {
  const file = withoutFileDuplicates(located);
  const { settings, errors } = mergeSettings([file.settings]);
  return { ...unlocate(withoutDuplicates(file, errors)), settings };
}

function withoutFileDuplicates(f: LocatedConfigFile): LocatedConfigFile {
  const d = withoutDuplicates(f);
  return { ...d, settings: d.errors.length > 0 ? [] : f.settings };
}

function empty(errors: ConfigDiagnostic[]): LocatedConfigFile {
  return { services: [], checks: [], errors, settings: [] };
}

function decodeFile(parsed: ParseResult, fileName: string): LocatedConfigFile {
  // Decoding a half-parsed file would only add knock-on errors.
  if (parsed.errors.length > 0) return empty(parsed.errors);
  const result = decodeConfigFileAt(parsed.root, fileName);
  return result.errors.length > 0 ? empty(result.errors) : result;
}

async function loadLocated(path: string): Promise<LocatedConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return empty([ioError(path, err)]);
  }
  return decodeFile(parseConfigText(text, path), path);
}

/**
 * Two definitions with one id would silently replace each other on the agent: an error. So is
 * a setting with two values (`conflicts`); either way the file that came later is dropped.
 */
function withoutDuplicates(
  d: LocatedDefinitions,
  conflicts: readonly ConfigDiagnostic[] = [],
): LocatedDefinitions {
  const errors = [
    ...d.errors,
    ...conflicts,
    ...duplicates(d.services, 'service', (s) => s.ID ?? s.Name),
    ...duplicates(d.checks, 'check', (c) => c.ID ?? c.Name),
  ];
  if (errors.length === d.errors.length) return d;
  // Drop the files that hold a duplicate, as for any other error.
  const bad = new Set(errors.slice(d.errors.length).map((e) => e.file));
  return {
    services: d.services.filter((s) => !bad.has(s.file)),
    checks: d.checks.filter((c) => !bad.has(c.file)),
    errors: sortDiagnostics(errors),
  };
}

function unlocate(d: LocatedDefinitions): ServiceDefinitions {
  return {
    services: d.services.map((s) => s.value),
    checks: d.checks.map((c) => c.value),
    errors: d.errors,
  };
}

function ioError(file: string, err: unknown): ConfigDiagnostic {
  return { file, line: 0, column: 0, key: '', message: `cannot read: ${describeError(err)}` };
}

function duplicates<T>(
  items: readonly Located<T>[],
  what: string,
  idOf: (item: T) => string,
): ConfigDiagnostic[] {
  const seen = new Map<string, Located<T>>();
  const out: ConfigDiagnostic[] = [];
  for (const item of items) {
    const id = idOf(item.value);
    const first = seen.get(id);
    if (!first) {
      seen.set(id, item);
      continue;
    }
    const where = first.pos ? `${first.file}:${first.pos.line}:${first.pos.column}` : first.file;
    out.push({
      file: item.file,
      line: item.pos?.line ?? 0,
      column: item.pos?.column ?? 0,
      key: what,
      message: `duplicate ${what} id ${JSON.stringify(id)} (first defined at ${where})`,
    });
  }
  return out;
}
