/** The consul npm package against `trellis dev` (a real process). */
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
