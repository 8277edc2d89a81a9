/**
 * Shapes shared by the check runners and the scheduler.
 */
import type { CheckType, HealthStatus } from '../../api/index.js';

/** What one run of a check concluded. */
export interface CheckResult {
  status: HealthStatus;
  output: string;
}

/** The kinds of check the agent runs; exactly one per definition. */
export type CheckKind = 'script' | 'http' | 'tcp' | 'grpc' | 'ttl' | 'alias';

/**
 * The kinds that are probed on an interval: not TTL (pushed from outside) nor alias (follows
 * local state).
 */
export type ProbeKind = Exclude<CheckKind, 'ttl' | 'alias'>;

/**
 * One probe kind's runner. run() never rejects: every failure, including the timeout and an
 * abort through `signal`, resolves as a critical result whose output says what happened.
 */
export interface CheckRunner<K extends ProbeKind = ProbeKind> {
  readonly kind: K;
  run(timeoutMs: number, signal?: AbortSignal): Promise<CheckResult>;
}

/** The fields each runner reads, with its target required. */
export type HttpCheckDef = Pick<
  CheckType,
  | 'Method'
  | 'Header'
  | 'Body'
  | 'DisableRedirects'
  | 'TLSServerName'
  | 'TLSSkipVerify'
  | 'OutputMaxSize'
> & { HTTP: string };

export type TcpCheckDef = { TCP: string };

export type GrpcCheckDef = Pick<CheckType, 'GRPCUseTLS' | 'TLSServerName' | 'TLSSkipVerify'> & {
  GRPC: string;
};

export type ScriptCheckDef = Pick<CheckType, 'OutputMaxSize'> & { ScriptArgs: string[] };

/** A check's current state as the scheduler reports it. */
export interface CheckState extends CheckResult {
  id: string;
  kind: CheckKind;
}

/** Called whenever a check's status or output changes. */
export type CheckChangeHandler = (id: string, result: CheckResult) => void;
