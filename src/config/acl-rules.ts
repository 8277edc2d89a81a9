/**
 * Consul's ACL rule language, in HCL or JSON, into a policy rule set:
 *
 *   service "web"     { policy = "write"  intentions = "write" }
 *   service_prefix "" { policy = "read" }
 *   key_prefix "app/" { policy = "list" }
 *   operator = "read"
 *
 * JSON spells the same as `{"service": {"web": {"policy": "write"}}}`. Errors carry positions
 * and "did you mean" like every other file Trellis reads.
 */
import { closest } from '../core/suggest.js';
import {
  emptyRuleSet,
  GLOBAL_RESOURCES,
  NAMED_RESOURCES,
  type AclRule,
  type AclRuleSet,
  type Disposition,
  type GlobalResource,
  type NamedResource,
} from '../policy/index.js';
import type { ObjectNode, Position, ValueNode } from './ast.js';
import { Reporter, type ConfigDiagnostic } from './diagnostics.js';
import { parseConfigText } from './parse.js';

const DISPOSITIONS: readonly Disposition[] = ['deny', 'read', 'list', 'write'];
const RESOURCE_KEYS = [...NAMED_RESOURCES.flatMap((r) => [r, `${r}_prefix`]), ...GLOBAL_RESOURCES];

export interface AclRulesResult {
  rules: AclRuleSet;
  errors: ConfigDiagnostic[];
}

function disposition(
  node: ValueNode,
  key: string,
  rep: Reporter,
  allowList: boolean,
): Disposition | undefined {
  if (
    node.kind !== 'string' ||
    !DISPOSITIONS.includes(node.value as Disposition) ||
    (!allowList && node.value === 'list')
  ) {
    const allowed = allowList ? 'read, list, write or deny' : 'read, write or deny';
    rep.error(node.pos, key, `must be ${allowed}`);
    return undefined;
  }
  return node.value as Disposition;
}

function ruleBody(
  node: ValueNode,
  path: string,
  resource: NamedResource,
  rep: Reporter,
): AclRule | undefined {
  if (node.kind !== 'object') {
    rep.error(node.pos, path, 'must be a block such as { policy = "read" }');
    return undefined;
  }
  let policy: Disposition | undefined;
  let intentions: Disposition | undefined;
  let policyWritten = false;
  for (const e of node.entries) {
    const k = e.key.toLowerCase();
    if (k === 'policy') {
      policyWritten = true;
      policy = disposition(e.value, `${path}.policy`, rep, resource === 'key');
    } else if (k === 'intentions' && resource === 'service')
      intentions = disposition(e.value, `${path}.intentions`, rep, false);
    else {
      const hint = closest(e.key, resource === 'service' ? ['policy', 'intentions'] : ['policy']);
      rep.error(
        e.keyPos,
        `${path}.${e.key}`,
        `unknown key${hint ? `; did you mean "${hint}"?` : ''}`,
      );
    }
  }
  if (!policy) {
    if (!policyWritten) rep.error(node.pos, `${path}.policy`, 'missing required key');
    return undefined;
  }
  return intentions ? { policy, intentions } : { policy };
}

function addRule(
  set: AclRuleSet,
  key: string,
  name: string,
  rule: AclRule,
  pos: Position,
  path: string,
  rep: Reporter,
): void {
  const prefix = key.endsWith('_prefix');
  const resource = (prefix ? key.slice(0, -'_prefix'.length) : key) as NamedResource;
  const map = ((prefix ? set.prefix : set.exact)[resource] ??= new Map());
  if (map.has(name)) {
    rep.error(pos, path, `${key} "${name}" is defined twice`);
    return;
  }
  map.set(name, rule);
}

/** Parses rules text (HCL or JSON); `fileName` names it in errors (e.g. `policy web-write`). */
export function parseAclRules(text: string, fileName: string): AclRulesResult {
  const set = emptyRuleSet();
  if (text.trim() === '') return { rules: set, errors: [] };
  const parsed = parseConfigText(text, fileName);
  if (parsed.errors.length > 0 || !parsed.root) return { rules: set, errors: parsed.errors };
  const rep = new Reporter(fileName);
  if (parsed.root.kind !== 'object') {
    rep.error(parsed.root.pos, '', 'rules must be an object of resources');
    return { rules: set, errors: rep.diagnostics };
  }
  for (const e of (parsed.root as ObjectNode).entries) {
    const key = e.key.toLowerCase();
    if ((GLOBAL_RESOURCES as readonly string[]).includes(key)) {
      const d = disposition(e.value, key, rep, false);
      if (d) set.global[key as GlobalResource] = d;
      continue;
    }
    if (!RESOURCE_KEYS.includes(key)) {
      const hint = closest(e.key, RESOURCE_KEYS);
      rep.error(e.keyPos, e.key, `unknown resource${hint ? `; did you mean "${hint}"?` : ''}`);
      continue;
    }
    const resource = key.replace(/_prefix$/, '') as NamedResource;
    if (e.labels.length === 1) {
      // HCL: service "web" { ... }
      const name = e.labels[0]!.value;
      const path = `${key}["${name}"]`;
      const rule = ruleBody(e.value, path, resource, rep);
      if (rule) addRule(set, key, name, rule, e.labels[0]!.pos, path, rep);
    } else if (e.labels.length === 0 && e.value.kind === 'object') {
      // JSON (or HCL map form): "service": { "web": { ... } }
      for (const inner of e.value.entries) {
        const path = `${key}["${inner.key}"]`;
        const rule = ruleBody(inner.value, path, resource, rep);
        if (rule) addRule(set, key, inner.key, rule, inner.keyPos, path, rep);
      }
    } else {
      rep.error(e.keyPos, key, `expected ${key} "NAME" { policy = "..." }`);
    }
  }
  return { rules: rep.diagnostics.length > 0 ? emptyRuleSet() : set, errors: rep.diagnostics };
}
