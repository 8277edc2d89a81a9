import { expect } from 'chai';
import { MeshError } from '../../../src/core/index.js';
import { parseAddress } from '../../../src/client/index.js';

describe('parseAddress()', () => {
  it('reads host:port as http, or https when TLS is configured', () => {
    expect(parseAddress('10.0.0.1:8500')).to.deep.equal({
      origin: 'http://10.0.0.1:8500',
      basePath: '',
      label: '10.0.0.1:8500',
    });
    expect(parseAddress('mesh.local:9000', true).origin).to.equal('https://mesh.local:9000');
  });

  it('fills in the default port', () => {
    expect(parseAddress('mesh.local').origin).to.equal('http://mesh.local:8500');
    expect(parseAddress('https://mesh.local').origin).to.equal('https://mesh.local:8501');
  });

  it('keeps IPv6 brackets and a URL path prefix', () => {
    expect(parseAddress('[::1]:8500').origin).to.equal('http://[::1]:8500');
    expect(parseAddress('http://h:1/api/').basePath).to.equal('/api');
  });

  it('refuses empty, unparsable and non-HTTP addresses', () => {
    for (const bad of ['', 'http://', 'ftp://h:1', 'h:1/path', 'h:notaport']) {
      expect(() => parseAddress(bad), bad).to.throw(MeshError);
    }
  });
});
