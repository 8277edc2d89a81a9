/**
 * Loads service definition files for `services register|deregister`: every file is read and
 * parsed before anything is sent, so one broken file stops the whole command.
 */
import type { CheckRegistration, ServiceRegistration } from '../api/index.js';
import { badRequest, describeError } from '../core/index.js';
import type { CliDeps, ConfigDiagnosticLike } from './context.js';

export interface Definitions {
  services: ServiceRegistration[];
  checks: CheckRegistration[];
  /** One `file:line:column: key: message` line per problem, across all files. */
  problems: string[];
}

export async function loadDefinitions(
  files: readonly string[],
  deps: CliDeps,
): Promise<Definitions> {
  const out: Definitions = { services: [], checks: [], problems: [] };
  // id -> file that defined it; the parser catches repeats within one file, this across files.
  const serviceFiles = new Map<string, string>();
  const checkFiles = new Map<string, string>();
  for (const file of files) {
    let text: string;
    try {
      text = (await deps.readFile(file)).toString('utf8');
    } catch (err) {
      out.problems.push(`${file}: cannot read the file: ${describeError(err)}`);
      continue;
    }
    const parsed = deps.parseServiceDefinitions(text, file);
    out.problems.push(...parsed.errors.map(formatProblem));
    out.problems.push(...repeats(file, 'service', parsed.services.map(serviceId), serviceFiles));
    out.problems.push(...repeats(file, 'check', parsed.checks.map(checkId), checkFiles));
    out.services.push(...parsed.services);
    out.checks.push(...parsed.checks);
  }
  if (out.problems.length === 0 && out.services.length === 0 && out.checks.length === 0) {
    throw badRequest(`No services or checks are defined in ${files.join(', ')}`);
  }
  return out;
}

/** Ids defined by an earlier file too: the later registration would replace the earlier. */
function repeats(file: string, what: string, ids: string[], seen: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const id of ids) {
    const first = seen.get(id);
    if (first !== undefined && first !== file) {
      problems.push(`${file}: ${what} "${id}" is also defined in ${first}`);
    } else {
      seen.set(id, file);
    }
  }
  return problems;
}

/** `file:line:column: key: message`; the position is left out when the parser has none. */
export function formatProblem(d: ConfigDiagnosticLike): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.column}` : d.file;
  return d.key ? `${where}: ${d.key}: ${d.message}` : `${where}: ${d.message}`;
}

/** The id the agent files a service under: its ID, else its name. */
export function serviceId(s: ServiceRegistration): string {
  return s.ID || s.Name;
}

/** The id the agent files a standalone check under: ID, CheckID, else its name. */
export function checkId(c: CheckRegistration): string {
  return c.ID || c.CheckID || c.Name;
}
