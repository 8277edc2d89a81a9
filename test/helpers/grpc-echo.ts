/**
 * A gRPC echo service for mesh tests, with @grpc/grpc-js on both ends and JSON messages: real
 * gRPC framing, trailers and streaming over HTTP/2, without a protobuf compiler.
 */
import * as grpc from '@grpc/grpc-js';

const ser = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const de = (b: Buffer): unknown => JSON.parse(b.toString());
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/trellis.test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: ser,
  requestDeserialize: de,
  responseSerialize: ser,
  responseDeserialize: de,
});
export const ECHO = {
  Echo: method('Echo', false, false),
  Count: method('Count', false, true),
  Sum: method('Sum', true, false),
  Missing: method('Missing', false, false),
};
export type Msg = { text?: string; n?: number; caller?: string };

export function startGrpcApp(): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(ECHO, {
    Echo: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const xfcc = call.metadata.get('x-forwarded-client-cert')[0];
      cb(null, { text: call.request.text, caller: String(xfcc) });
    },
    Count: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      for (let i = 1; i <= (call.request.n ?? 0); i++) call.write({ n: i });
      call.end();
    },
    Sum: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      let total = 0;
      call.on('data', (m: Msg) => (total += m.n ?? 0));
      call.on('end', () => cb(null, { n: total }));
    },
    Missing: (_call: unknown, cb: grpc.sendUnaryData<Msg>) =>
      cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' }),
  });
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve({ server, port }),
    ),
  );
}

export const GrpcClient = grpc.makeGenericClientConstructor(ECHO, 'Echo');
type Unary = (m: Msg, cb: (e: grpc.ServiceError | null, r: Msg) => void) => void;

export function unary(c: grpc.Client, name: 'Echo' | 'Missing', m: Msg): Promise<Msg> {
  return new Promise((resolve, reject) =>
    (c as unknown as Record<string, Unary>)[name]!.call(c, m, (e, r) =>
      e ? reject(e) : resolve(r),
    ),
  );
}

/** Collects a server-streaming Count call. */
export function count(c: grpc.Client, n: number): Promise<number[]> {
  const call = (
    c as unknown as Record<string, (m: Msg) => grpc.ClientReadableStream<Msg>>
  ).Count!.call(c, { n });
  const got: number[] = [];
  return new Promise((resolve, reject) => {
    call.on('data', (m: Msg) => got.push(m.n ?? 0));
    call.on('end', () => resolve(got));
    call.on('error', reject);
  });
}
