/**
 * config: the one parser for operator-written configuration. Reads HCL-like and JSON text into a
 * positioned syntax tree (parseConfigText), checks it against a declarative Schema (decode) and
 * reports every problem as `file:line:column: key: message`. Service definition files decode to
 * the API's ServiceRegistration and CheckRegistration (parseServiceDefinitions, loadConfigFile,
 * loadConfigDir). Config-dir files may also hold agent and server settings (AgentSettings, merged
 * across files by loadConfigDir); other settings files define their own schemas with the same
 * builders. Consul config entries (service-defaults, routers, splitters, resolvers, intentions)
 * are validated by normalizeConfigEntry and read from files by parseConfigEntryFile.
 */
export * from './ast.js';
export * from './diagnostics.js';
export { parseHcl, type HclParseResult } from './hcl.js';
export { parseJson, type JsonParseResult } from './json.js';
export * from './parse.js';
export * from './schema.js';
export { decode, joinPath, type DecodeOptions, type DecodeResult } from './decode.js';
export * from './validators.js';
export { closest, editDistance, normalizeKey } from '../core/suggest.js';
export {
  serviceSchema,
  checkRegistrationSchema,
  serviceDefinitionFields,
  serviceDefinitionSchema,
  decodeServiceDefinitionsAt,
  locateDefinitions,
  type Located,
  type LocatedDefinitions,
} from './service-definition.js';
export {
  configFileSchema,
  decodeConfigFileAt,
  mergeSettings,
  LOG_LEVELS,
  type AgentSettings,
  type LocatedConfigFile,
  type LogLevel,
  type MergedSettings,
  type SettingEntry,
} from './agent-settings.js';
export * from './load.js';
export * from './acl-rules.js';
export * from './config-entries.js';
export * from './config-entry-file.js';
