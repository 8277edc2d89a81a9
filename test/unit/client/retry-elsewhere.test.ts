import { expect } from 'chai';
import { mayRetryElsewhere } from '../../../src/client/index.js';

describe('client: which failures may go to the next server', () => {
  const err = (code: string): Error => Object.assign(new Error(code), { code });

  it('retries reads after any connection failure', () => {
    expect(mayRetryElsewhere('GET', err('ECONNRESET'))).to.equal(true);
    expect(mayRetryElsewhere('GET', err('UND_ERR_SOCKET'))).to.equal(true);
  });

  it('retries writes only when they were certainly not delivered', () => {
    expect(mayRetryElsewhere('PUT', err('ECONNREFUSED'))).to.equal(true);
    expect(mayRetryElsewhere('PUT', err('UND_ERR_CONNECT_TIMEOUT'))).to.equal(true);
    expect(mayRetryElsewhere('PUT', new Error('wrapped', { cause: err('EHOSTUNREACH') }))).to.equal(
      true,
    );
    expect(mayRetryElsewhere('PUT', err('ECONNRESET'))).to.equal(false);
    expect(mayRetryElsewhere('DELETE', err('UND_ERR_HEADERS_TIMEOUT'))).to.equal(false);
  });
});
