/**
 * The upstream application of the data-plane benchmark, in a process of its own so its CPU is
 * not mixed with the load generator's: HTTP/1.1 on 127.0.0.1 (port 0), reads each request's
 * body and answers 200 with a body of `bodyBytes`. Usage:
 *   node app-server.js <bodyBytes>
 * stdout: `DATAPLANE-READY {"port": N}` once listening. SIGTERM ends it.
 */
import { createServer } from 'node:http';
import { READY_MARK } from './types.js';

const size = Number(process.argv[2] ?? 1024);
const body = Buffer.alloc(size, 0x62);

const server = createServer(
  // Keep connections open as long as the clients and proxies want (Node's default is 5 s).
  { keepAliveTimeout: 120_000, headersTimeout: 60_000, requestTimeout: 0 },
  (req, res) => {
    let received = 0;
    req.on('data', (d: Buffer) => (received += d.length));
    req.on('end', () => {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': body.length,
        'x-received-bytes': received,
      });
      res.end(body);
    });
  },
);
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  process.stdout.write(`${READY_MARK} ${JSON.stringify({ port })}\n`);
});
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
