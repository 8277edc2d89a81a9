/**
 * agent/checks: the agent's health-check runners, as Consul's agent runs them. HTTP, TCP, gRPC
 * (grpc.health.v1) and script checks are probed every Interval with a timeout; TTL checks are
 * reported from outside and expire; alias checks mirror another local service. CheckScheduler
 * owns the running checks, applies the success/failure thresholds and reports every change of
 * status or output through onChange, which the agent syncs to the catalog. Script checks run
 * only when enabled.
 */
export type {
  CheckChangeHandler,
  CheckKind,
  CheckResult,
  CheckRunner,
  CheckState,
  GrpcCheckDef,
  HttpCheckDef,
  ProbeKind,
  ScriptCheckDef,
  TcpCheckDef,
} from './types.js';
export type { CheckPlan, Thresholds } from './definition.js';
export { checkKind, planCheck, DEFAULT_MIN_INTERVAL_MS } from './definition.js';
export { DEFAULT_OUTPUT_MAX_SIZE, DEFAULT_TIMEOUT_MS } from './util.js';
export { HttpCheck, httpStatusFor } from './http.js';
export { TcpCheck } from './tcp.js';
export { GrpcCheck, parseGrpcTarget } from './grpc.js';
export type { GrpcTarget } from './grpc.js';
export { ScriptCheck, scriptStatusFor } from './script.js';
export { TtlCheck, TTL_EXPIRED } from './ttl.js';
export type { TtlCheckOptions } from './ttl.js';
export { ThresholdFilter } from './thresholds.js';
export { aliasResult } from './alias.js';
export type { AliasedCheck, AliasSource, AliasTarget } from './alias.js';
export { CheckScheduler, createRunner } from './scheduler.js';
export type { CheckSchedulerOptions, RunnerFactory } from './scheduler.js';
