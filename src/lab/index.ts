/**
 * lab: a multi-host mesh on one machine. Hosts are network namespaces joined by a bridge in
 * a switch namespace; the server, agents and demo apps are `trellis` child processes started
 * in them. Nothing here imports the agent or the catalog.
 */
export { labUp, type LabUpResult } from './up.js';
export { labDown, type LabDownResult } from './down.js';
export {
  labStatus,
  formatStatus,
  type LabStatus,
  type HostStatus,
  type ProcessStatus,
  type ServerStatus,
  type EtcdMemberStatus,
  type ServiceStatus,
} from './status.js';
export { labExec, type ExecOptions } from './exec.js';
export {
  serverViews,
  leaderHost,
  leaderDisagreement,
  etcdHealthy,
  type ServerView,
} from './servers.js';
export { CA_KEY_FILE, DEFAULT_ETCD, etcdEndpoints } from './etcd.js';
export { startDemoApp, parseListen, type DemoApp, type DemoAppOptions } from './demo-app.js';
export { defaultServicesDir, defaultTrellis, type LabOptions } from './options.js';
export { LabError } from './sys.js';
export {
  ACTIVE_FILE,
  defaultStateDir,
  readState,
  type LabProcess,
  type LabState,
} from './state.js';
export * from './topology.js';
