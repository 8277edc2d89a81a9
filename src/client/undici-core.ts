/**
 * The parts of undici Trellis uses (Agent, buildConnector, `dispatcher.request`), loaded
 * without undici's index: the index also loads fetch, WebSocket, the cache stores, mocks and
 * every interceptor, ~8 MiB of resident memory in every agent for code it never runs.
 *
 * The deep paths are undici 7's layout (package.json pins ^7); test/unit/client/undici-core
 * checks they still resolve to the classes the index exports.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const load = createRequire(import.meta.url);

export const Agent = load('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export const buildConnector = load('undici/lib/core/connect.js') as typeof Undici.buildConnector;
const Dispatcher = load('undici/lib/dispatcher/dispatcher.js') as typeof Undici.Dispatcher;
// What undici's index does on load: the request/stream/pipeline/upgrade/connect methods.
if (typeof (Dispatcher.prototype as { request?: unknown }).request !== 'function')
  Object.assign(Dispatcher.prototype, load('undici/lib/api/index.js') as object);
