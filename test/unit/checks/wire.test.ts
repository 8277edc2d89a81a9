import { expect } from 'chai';
import {
  decodeHealthCheckResponse,
  encodeHealthCheckRequest,
  frameMessage,
  unframeMessage,
} from '../../../src/agent/checks/grpc-wire.js';
import { parseGrpcTarget } from '../../../src/agent/checks/index.js';
import { HeadBuffer, TailBuffer, parseHostPort } from '../../../src/agent/checks/util.js';

describe('checks/grpc-wire', () => {
  it('encodes HealthCheckRequest.service as field 1', () => {
    expect(encodeHealthCheckRequest('')).to.have.lengthOf(0);
    expect([...encodeHealthCheckRequest('ab')]).to.deep.equal([0x0a, 2, 0x61, 0x62]);
    const long = encodeHealthCheckRequest('x'.repeat(200));
    expect([...long.subarray(0, 3)]).to.deep.equal([0x0a, 0xc8, 0x01]);
    expect(long).to.have.lengthOf(203);
  });

  it('frames and unframes messages', () => {
    const framed = frameMessage(Buffer.from([1, 2, 3]));
    expect([...framed]).to.deep.equal([0, 0, 0, 0, 3, 1, 2, 3]);
    expect([...unframeMessage(framed)]).to.deep.equal([1, 2, 3]);
    expect(() => unframeMessage(Buffer.from([0, 0, 0]))).to.throw(/no message/);
    expect(() => unframeMessage(Buffer.from([0, 0, 0, 0, 9, 1]))).to.throw(/truncated/);
    expect(() => unframeMessage(Buffer.from([1, 0, 0, 0, 0]))).to.throw(/compressed/);
  });

  it('decodes the status and skips unknown fields', () => {
    expect(decodeHealthCheckResponse(Buffer.alloc(0))).to.equal(0);
    expect(decodeHealthCheckResponse(Buffer.from([0x08, 1]))).to.equal(1);
    // field 2 (string "hi"), then field 1 = 2
    expect(decodeHealthCheckResponse(Buffer.from([0x12, 2, 0x68, 0x69, 0x08, 2]))).to.equal(2);
    expect(() => decodeHealthCheckResponse(Buffer.from([0x12, 5, 0x68]))).to.throw(/truncated/);
  });

  it('parses targets', () => {
    expect(parseGrpcTarget('127.0.0.1:50051')).to.deep.equal({
      host: '127.0.0.1',
      port: 50051,
      service: '',
    });
    expect(parseGrpcTarget('[::1]:9/my.Svc')).to.deep.equal({
      host: '::1',
      port: 9,
      service: 'my.Svc',
    });
    expect(parseGrpcTarget('host')).to.equal(undefined);
    expect(parseHostPort('::1:80')).to.equal(undefined);
    expect(parseHostPort('a:0')).to.equal(undefined);
  });
});

describe('checks/output buffers', () => {
  it('keeps the head of a body', () => {
    const b = new HeadBuffer(5);
    expect(b.push(Buffer.from('abc'))).to.equal(true);
    expect(b.push(Buffer.from('defgh'))).to.equal(false);
    expect(b.toString()).to.equal('abcde');
  });

  it('keeps the tail of script output and says so', () => {
    const b = new TailBuffer(4);
    b.push(Buffer.from('abc'));
    expect(b.toString()).to.equal('abc');
    b.push(Buffer.from('defg'));
    expect(b.toString()).to.equal('Captured 4 of 7 bytes\n...\ndefg');
  });
});
