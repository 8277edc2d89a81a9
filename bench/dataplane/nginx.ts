/**
 * The app of the data-plane benchmark: Debian's nginx-light, from a config of its own in a temp
 * directory (its own pid file, error log and temp paths; nothing under /etc or /var is read or
 * written). One process (`daemon off; master_process off`), so the PID the benchmark started is
 * the one that serves, and its CPU is read from /proc. Two listeners on 127.0.0.1: HTTP/1.1,
 * and h2c with prior knowledge (`listen ... http2`, as nginx 1.22 does it) for the HTTP/2
 * rows. Every GET answers 200 with the same body of `bodyBytes` from a file.
 *
 * Without nginx, the Node app (app-server.ts, HTTP/1.1 only) stands in, with a note: it is then
 * the bottleneck of every row and the HTTP/2 rows are skipped.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/helpers/net.js';
import { waitPorts, type Child, type ProcessGroup } from './children.js';
import { nginxPath } from './tools.js';
import { READY_MARK } from './types.js';

const NODE_APP = fileURLToPath(new URL('./app-server.js', import.meta.url));
const START_TIMEOUT_MS = 20_000;

export interface RunningApp {
  kind: 'nginx' | 'node';
  child: Child;
  /** HTTP/1.1 port. */
  port: number;
  /** h2c (prior knowledge) port; undefined for the Node fallback. */
  h2cPort?: number;
}

export function nginxConfig(dir: string, port: number, h2cPort: number): string {
  const d = (p: string): string => join(dir, p);
  return `daemon off;
master_process off;
worker_processes 1;
pid ${d('nginx.pid')};
error_log ${d('error.log')} warn;

events {
    worker_connections 8192;
}

http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path ${d('tmp/body')};
    proxy_temp_path ${d('tmp/proxy')};
    fastcgi_temp_path ${d('tmp/fastcgi')};
    uwsgi_temp_path ${d('tmp/uwsgi')};
    scgi_temp_path ${d('tmp/scgi')};
    default_type application/octet-stream;
    open_file_cache max=16;
    etag off;

    server {
        listen 127.0.0.1:${port};
        listen 127.0.0.1:${h2cPort} http2;
        root ${d('www')};
        location / {
            try_files /body.bin =404;
        }
    }
}
`;
}

async function startNginx(
  group: ProcessGroup,
  bin: string,
  bodyBytes: number,
): Promise<RunningApp> {
  const dir = group.tempDir('nginx');
  mkdirSync(join(dir, 'www'));
  mkdirSync(join(dir, 'tmp'));
  writeFileSync(join(dir, 'www', 'body.bin'), Buffer.alloc(bodyBytes, 0x62));
  const [port, h2cPort] = [await freePort(), await freePort()];
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(dir, port, h2cPort));
  const child = group.spawn({
    name: 'nginx',
    command: bin,
    args: ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')],
  });
  try {
    await waitPorts([port, h2cPort], START_TIMEOUT_MS, 'nginx', child.running);
  } catch (err) {
    await group.stop(child);
    throw new Error(`${String(err)}\n${child.output()}`);
  }
  return { kind: 'nginx', child, port, h2cPort };
}

async function startNodeApp(group: ProcessGroup, bodyBytes: number): Promise<RunningApp> {
  const child = group.node('app', NODE_APP, [String(bodyBytes)]);
  const { port } = JSON.parse(await child.waitLine(READY_MARK, START_TIMEOUT_MS)) as {
    port: number;
  };
  return { kind: 'node', child, port };
}

/** nginx if installed, else the Node app; `note` receives why the fallback was used. */
export async function startApp(
  group: ProcessGroup,
  bodyBytes: number,
  note: (text: string) => void,
): Promise<RunningApp> {
  const bin = nginxPath();
  if (bin) return startNginx(group, bin, bodyBytes);
  note(
    'nginx is not installed (apt-get install nginx-light, or set BENCH_NGINX): the Node app ' +
      'stands in, is the bottleneck of every row, and the HTTP/2 rows are skipped',
  );
  return startNodeApp(group, bodyBytes);
}
