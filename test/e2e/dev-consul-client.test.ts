/** The consul npm package against `trellis dev` (a real process). */
import { expect } from 'chai';
import Consul from 'consul';
import { consulCompatSuite } from './consul-compat.js';
import {
  hostPort,
  removeDir,
  startTrellis,
  tempDir,
  type TrellisProcess,
} from '../helpers/trellis-process.js';

describe('consul npm client against trellis dev', function () {
  let dev: TrellisProcess;
  let dir: string;
  let consul: InstanceType<typeof Consul>;

  before(async () => {
    dir = tempDir('dev');
    dev = await startTrellis([
      'dev',
      '--bind',
      '127.0.0.1:0',
      '--data-dir',
      dir,
      '--node',
      'devnode',
    ]);
    consul = new Consul({ ...hostPort(dev.address) });
  });
  after(async () => {
    await dev?.stop();
    removeDir(dir);
  });

  consulCompatSuite({ consul: () => consul, other: () => consul, node: 'devnode' });
});

describe('trellis dev --no-demo', function () {
  it('starts without the demo service', async () => {
    const dir = tempDir('dev-nodemo');
    const dev = await startTrellis([
      'dev',
      '--bind',
      '127.0.0.1:0',
      '--data-dir',
      dir,
      '--no-demo',
    ]);
    try {
      const consul = new Consul({ ...hostPort(dev.address) });
      const services = (await consul.agent.service.list()) as Record<string, unknown>;
      expect(Object.keys(services)).to.not.include('demo');
    } finally {
      await dev.stop();
      removeDir(dir);
    }
  });
});
