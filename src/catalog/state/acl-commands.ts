/**
 * The ACL writes of the state machine and how they apply. Every check that depends on the
 * current state (bootstrap done?, name taken?, policy exists?, join token spent?) runs here, so a
 * write that fails changes nothing; the HTTP layer has already checked the shape.
 */
import {
  ANONYMOUS_ACCESSOR,
  GLOBAL_MANAGEMENT_ID,
  type AclTable,
  type NewPolicy,
  type NewToken,
} from './acl-table.js';
import { K } from './index-table.js';
import type { ChangeSet } from './watch.js';

export interface AclBootstrapCommand {
  type: 'acl-bootstrap';
  token: NewToken;
}

export interface AclTokenSetCommand {
  type: 'acl-token-set';
  token: NewToken;
  /** true: the accessor must be new; false: it must exist. */
  create: boolean;
}

export interface AclTokenDeleteCommand {
  type: 'acl-token-delete';
  accessor: string;
}

export interface AclPolicySetCommand {
  type: 'acl-policy-set';
  policy: NewPolicy;
  create: boolean;
}

export interface AclPolicyDeleteCommand {
  type: 'acl-policy-delete';
  id: string;
}

/** Trades an unspent, unexpired join token for a new agent token, atomically. */
export interface AclJoinRedeemCommand {
  type: 'acl-join-redeem';
  joinAccessor: string;
  token: NewToken;
  at: number;
}

export type AclCommand =
  | AclBootstrapCommand
  | AclTokenSetCommand
  | AclTokenDeleteCommand
  | AclPolicySetCommand
  | AclPolicyDeleteCommand
  | AclJoinRedeemCommand;

export type AclApplyResult =
  { ok: true; value: unknown } | { ok: false; error: string; status: number };

const ok = (value: unknown): AclApplyResult => ({ ok: true, value });
const fail = (error: string, status = 400): AclApplyResult => ({ ok: false, error, status });

/** The checks of an ACL command against the current state, without applying it. */
export function validateAcl(t: AclTable, cmd: AclCommand): AclApplyResult | undefined {
  switch (cmd.type) {
    case 'acl-bootstrap':
      if (t.bootstrapIndex > 0)
        return fail(`ACL bootstrap no longer allowed (reset index: ${t.bootstrapIndex})`, 403);
      return undefined;
    case 'acl-token-set':
      return validateToken(t, cmd.token, cmd.create);
    case 'acl-token-delete':
      if (cmd.accessor === ANONYMOUS_ACCESSOR)
        return fail('Deletion of the anonymous token is not permitted');
      return undefined;
    case 'acl-policy-set': {
      const p = cmd.policy;
      const old = t.policies.get(p.ID);
      if (cmd.create && old) return fail(`ID: a policy with ID "${p.ID}" already exists`);
      if (!cmd.create && !old) return fail(`Cannot find policy ${p.ID}`, 404);
      const named = t.policyByName(p.Name);
      if (named && named.ID !== p.ID)
        return fail(`Name: a policy named "${p.Name}" already exists`, 409);
      if (p.ID === GLOBAL_MANAGEMENT_ID && (p.Rules !== old?.Rules || p.Name !== old?.Name))
        return fail(
          'Changing the Rules or Name of the builtin global-management policy is not permitted',
        );
      return undefined;
    }
    case 'acl-policy-delete':
      if (cmd.id === GLOBAL_MANAGEMENT_ID)
        return fail('Deletion of the builtin global-management policy is not permitted');
      return undefined;
    case 'acl-join-redeem': {
      const j = t.tokens.get(cmd.joinAccessor);
      if (!j?.Join) return fail('join token not found', 403);
      if (j.Join.UsedAt) return fail('join token was already used', 403);
      if (j.ExpirationTime && Date.parse(j.ExpirationTime) <= cmd.at)
        return fail('join token has expired', 403);
      return validateToken(t, cmd.token, true);
    }
  }
}

function validateToken(t: AclTable, tok: NewToken, create: boolean): AclApplyResult | undefined {
  const old = t.tokens.get(tok.AccessorID);
  if (create && old)
    return fail(`AccessorID: a token with AccessorID "${tok.AccessorID}" already exists`, 409);
  if (!create && !old) return fail(`Cannot find token to update: ${tok.AccessorID}`, 404);
  if (create) {
    const clash = t.tokenBySecretHash(tok.SecretHash);
    if (clash) return fail('SecretID: a token with this SecretID already exists', 409);
  }
  if (old?.Join && !create)
    return fail('a join token cannot be updated; delete it and make another');
  for (const id of tok.Policies) {
    if (!t.policies.has(id)) return fail(`Policies: no policy with ID "${id}"`);
  }
  return undefined;
}

export function applyAcl(
  t: AclTable,
  cmd: AclCommand,
  index: number,
  change: ChangeSet,
): AclApplyResult {
  const bad = validateAcl(t, cmd);
  if (bad) return bad;
  change.keys.add(K.acl);
  switch (cmd.type) {
    case 'acl-bootstrap': {
      t.bootstrapIndex = index;
      const row = { ...cmd.token, CreateIndex: index, ModifyIndex: index };
      t.putToken(row);
      return ok(row);
    }
    case 'acl-token-set': {
      const old = t.tokens.get(cmd.token.AccessorID);
      const row = { ...cmd.token, CreateIndex: old?.CreateIndex ?? index, ModifyIndex: index };
      t.putToken(row);
      return ok(row);
    }
    case 'acl-token-delete':
      return ok(t.deleteToken(cmd.accessor));
    case 'acl-policy-set': {
      const old = t.policies.get(cmd.policy.ID);
      const row = { ...cmd.policy, CreateIndex: old?.CreateIndex ?? index, ModifyIndex: index };
      t.putPolicy(row);
      return ok(row);
    }
    case 'acl-policy-delete':
      return ok(t.deletePolicy(cmd.id));
    case 'acl-join-redeem': {
      const j = t.tokens.get(cmd.joinAccessor)!;
      t.putToken({
        ...j,
        Join: { ...j.Join!, UsedAt: new Date(cmd.at).toISOString(), UsedBy: cmd.token.AccessorID },
        ModifyIndex: index,
      });
      const row = { ...cmd.token, CreateIndex: index, ModifyIndex: index };
      t.putToken(row);
      return ok(row);
    }
  }
}
