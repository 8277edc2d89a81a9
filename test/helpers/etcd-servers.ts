/**
 * The flags of a `trellis server` on a test etcd cluster: the store, its endpoints, HTTPS off,
 * and a CA encryption key file (made once per call, in a temp dir of the test's), as every
 * server of one cluster must share it.
 */
import { writeCaEncryptionKey, type EtcdCluster } from './etcd-cluster.js';

export function etcdServerArgs(
  etcd: EtcdCluster,
  dirs: { make(name: string): string },
  tag: string,
): string[] {
  return [
    ...['--store', 'etcd', '--etcd-endpoints', etcd.endpoints, '--https-bind', 'off'],
    ...['--ca-encryption-key-file', writeCaEncryptionKey(dirs.make(`${tag}-key`))],
  ];
}
