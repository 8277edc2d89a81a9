/**
 * The file `trellis intention create --file` reads (HCL or JSON): an L7 intention body, keys
 * matched case-insensitively with or without underscores (`PathPrefix`, `path_prefix`):
 *
 *   Description = "API reads only"
 *   Permissions = [
 *     { Action = "allow", HTTP { PathPrefix = "/api", Methods = ["GET"] } },
 *     { Action = "deny",  HTTP { PathPrefix = "/" } },
 *   ]
 *
 * An `Action = "allow"` instead of Permissions makes an L4 intention.
 */
import type { IntentionUpsert } from '../../../api/index.js';
import {
  decode,
  field,
  oneOf,
  parseConfigText,
  schema,
  t,
  type ConfigDiagnostic,
  type ObjectView,
} from '../../../config/index.js';

const ACTIONS = ['allow', 'deny'];
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];

/** At most one of `names` may be written. */
function atMostOne(names: readonly string[], what: string) {
  return (view: ObjectView) => {
    const given = names.filter((n) => view.has(n));
    if (given.length > 1) view.error(`at most one of ${what} may be set`, given[1]);
  };
}

const headerSchema = schema(
  [
    field('Name', t.string(), { required: true }),
    field('Present', t.bool()),
    field('Exact', t.string()),
    field('Prefix', t.string()),
    field('Suffix', t.string()),
    field('Contains', t.string()),
    field('Regex', t.string()),
    field('Invert', t.bool()),
    field('IgnoreCase', t.bool()),
  ],
  atMostOne(
    ['Present', 'Exact', 'Prefix', 'Suffix', 'Contains', 'Regex'],
    'Present, Exact, Prefix, Suffix, Contains and Regex',
  ),
);

const httpSchema = schema(
  [
    field('PathExact', t.string()),
    field('PathPrefix', t.string()),
    field('PathRegex', t.string()),
    field('Methods', t.listOf(t.string(oneOf(METHODS)))),
    field('Header', t.block(headerSchema)),
  ],
  atMostOne(['PathExact', 'PathPrefix', 'PathRegex'], 'PathExact, PathPrefix and PathRegex'),
);

const permissionSchema = schema([
  field('Action', t.string(oneOf(ACTIONS)), { required: true }),
  field('HTTP', t.object(httpSchema)),
  field('JWT', t.opaque()),
]);

const intentionFileSchema = schema(
  [
    field('Description', t.string()),
    field('Action', t.string(oneOf(ACTIONS))),
    field('Permissions', t.block(permissionSchema)),
  ],
  (view) => {
    if (view.has('Action') && view.has('Permissions')) {
      view.error('Action and Permissions are mutually exclusive', 'Permissions');
    } else if (!view.has('Action') && !view.has('Permissions')) {
      view.error('the file must set Permissions (or Action)');
    } else if (view.has('Permissions') && (view.get('Permissions') as unknown[]).length === 0) {
      view.error('Permissions must list at least one permission', 'Permissions');
    }
  },
);

export interface IntentionFile {
  body: IntentionUpsert;
  errors: ConfigDiagnostic[];
}

/** Parses and checks an intention file; `body` is meaningful only without errors. */
export function parseIntentionFile(text: string, fileName: string): IntentionFile {
  const parsed = parseConfigText(text, fileName);
  if (parsed.errors.length > 0) return { body: {}, errors: parsed.errors };
  const { value, errors } = decode<IntentionUpsert>(parsed.root, intentionFileSchema, {
    file: fileName,
  });
  return { body: value, errors };
}
