/** The version the agent API reports (/v1/agent/self, /v1/agent/version, members' build tag). */
export const VERSION = '0.1.0';
export const BUILD_DATE = '2026-11-25T00:00:00Z';
