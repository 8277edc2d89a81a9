/**
 * The few bytes of protobuf and gRPC framing the health protocol needs, by hand:
 *   HealthCheckRequest  { string service = 1; }
 *   HealthCheckResponse { ServingStatus status = 1; }
 * and gRPC's 5-byte message prefix (compressed flag, big-endian length).
 */

export const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;
export const SERVING = 1;

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

export function encodeHealthCheckRequest(service: string): Buffer {
  if (service === '') return Buffer.alloc(0); // proto3 leaves default fields out
  const bytes = Buffer.from(service, 'utf8');
  return Buffer.concat([Buffer.from([0x0a, ...varint(bytes.length)]), bytes]);
}

export function frameMessage(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Returns the first framed message in `data`; throws when it is absent, cut or compressed. */
export function unframeMessage(data: Buffer): Buffer {
  if (data.length < 5) throw new Error('response carried no message');
  if (data[0] !== 0) throw new Error('response message is compressed, which was not asked for');
  const length = data.readUInt32BE(1);
  if (data.length < 5 + length) throw new Error('response message is truncated');
  return data.subarray(5, 5 + length);
}

class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): number {
    let result = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++]!;
      // only small values matter here; larger ones lose precision but stay parseable
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    throw new Error('varint too long');
  }

  skip(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error('truncated field');
    this.pos += n;
  }
}

/** Reads HealthCheckResponse.status (0 when absent), skipping fields it does not know. */
export function decodeHealthCheckResponse(message: Buffer): number {
  const r = new Reader(message);
  let status = 0;
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) {
      const v = r.varint();
      if (field === 1) status = v;
    } else if (wire === 1) r.skip(8);
    else if (wire === 2) r.skip(r.varint());
    else if (wire === 5) r.skip(4);
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
  return status;
}

export function servingStatusName(status: number): string {
  return SERVING_STATUS[status] ?? `status ${status}`;
}
