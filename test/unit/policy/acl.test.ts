import { expect } from 'chai';
import { formatDiagnostic, parseAclRules } from '../../../src/config/index.js';
import {
  allows,
  allowsGlobal,
  allowsIntentions,
  mergeRuleSets,
  type AclRuleSet,
} from '../../../src/policy/index.js';

function rules(text: string, name = 'policy'): AclRuleSet {
  const r = parseAclRules(text, name);
  expect(r.errors.map(formatDiagnostic)).to.deep.equal([]);
  return r.rules;
}

describe('ACL rules', () => {
  const web = rules(`
service "web"     { policy = "write"  intentions = "write" }
service_prefix "" { policy = "read" }
service_prefix "internal-" { policy = "deny" }
key_prefix "app/" { policy = "list" }
key "app/secret"  { policy = "deny" }
node_prefix ""    { policy = "read" }
operator = "read"
`);

  it('lets an exact rule beat a prefix, and the longest prefix win', () => {
    expect(allows(web, 'service', 'web', 'write', false)).to.equal(true);
    expect(allows(web, 'service', 'api', 'read', false)).to.equal(true);
    expect(allows(web, 'service', 'api', 'write', false)).to.equal(false);
    expect(allows(web, 'service', 'internal-db', 'read', true)).to.equal(false);
    expect(allows(web, 'key', 'app/x', 'list', false)).to.equal(true);
    expect(allows(web, 'key', 'app/secret', 'read', true)).to.equal(false);
  });

  it('falls back to the default policy where no rule applies', () => {
    expect(allows(web, 'session', 's', 'write', false)).to.equal(false);
    expect(allows(web, 'session', 's', 'write', true)).to.equal(true);
    expect(allowsGlobal(web, 'operator', 'read', false)).to.equal(true);
    expect(allowsGlobal(web, 'operator', 'write', true)).to.equal(false);
    expect(allowsGlobal(web, 'acl', 'read', false)).to.equal(false);
  });

  it('derives intention access from service rules', () => {
    expect(allowsIntentions(web, 'web', 'write', false)).to.equal(true);
    expect(allowsIntentions(web, 'api', 'read', false)).to.equal(true);
    expect(allowsIntentions(web, 'api', 'write', false)).to.equal(false);
    expect(allowsIntentions(web, 'internal-db', 'read', true)).to.equal(false);
  });

  it('merges policies: deny wins, otherwise the most permissive', () => {
    const other = rules(
      'service "web" { policy = "read" }\nservice "api" { policy = "write" }\nkey "app/x" { policy = "deny" }',
    );
    const merged = mergeRuleSets([web, other]);
    expect(allows(merged, 'service', 'web', 'write', false)).to.equal(true);
    expect(allows(merged, 'service', 'api', 'write', false)).to.equal(true);
    expect(allows(merged, 'key', 'app/x', 'read', true)).to.equal(false);
  });

  it('reads the JSON form too', () => {
    const j = rules(
      '{"service": {"web": {"policy": "write"}}, "key_prefix": {"": {"policy": "read"}}, "mesh": "read"}',
      'p.json',
    );
    expect(allows(j, 'service', 'web', 'write', false)).to.equal(true);
    expect(allows(j, 'key', 'anything', 'read', false)).to.equal(true);
    expect(allowsGlobal(j, 'mesh', 'read', false)).to.equal(true);
  });

  it('reports every mistake with its position', () => {
    const r = parseAclRules(
      'servce "web" { policy = "write" }\nservice "a" { polcy = "read" }\nservice "b" { policy = "admin" }\nnode "n" { policy = "list" }\n',
      'policy web',
    );
    expect(r.errors.map(formatDiagnostic)).to.deep.equal([
      'policy web:1:1: servce: unknown resource; did you mean "service"?',
      'policy web:2:15: service["a"].polcy: unknown key; did you mean "policy"?',
      'policy web:2:13: service["a"].policy: missing required key',
      'policy web:3:24: service["b"].policy: must be read, write or deny',
      'policy web:4:21: node["n"].policy: must be read, write or deny',
    ]);
  });
});
