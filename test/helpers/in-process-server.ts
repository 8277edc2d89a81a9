/** A catalog server in the test's own process, on 127.0.0.1 port 0, with a temp data dir. */
import { newId, systemClock, systemRandom } from '../../src/core/index.js';
import { startServer, type CatalogServer, type ServerOptions } from '../../src/catalog/server.js';
import { removeDir, tempDir } from './trellis-process.js';

const quiet = { info() {}, warn() {}, error() {} };

export interface TestServer {
  server: CatalogServer;
  url: string;
  dir: string;
  close(): Promise<void>;
}

export async function startTestServer(opts: Partial<ServerOptions> = {}): Promise<TestServer> {
  const dir = tempDir('catalog');
  const server = await startServer({
    dataDir: dir,
    datacenter: 'dc1',
    nodeName: 'srv1',
    nodeId: newId(),
    host: '127.0.0.1',
    port: 0,
    advertiseAddr: '127.0.0.1',
    clock: systemClock,
    random: systemRandom,
    newId,
    log: quiet,
    sessionMinTTLms: 1000,
    aclDefaultPolicy: 'allow',
    ...opts,
  });
  return {
    server,
    dir,
    url: `http://${server.address}`,
    async close() {
      await server.close();
      removeDir(dir);
    },
  };
}
