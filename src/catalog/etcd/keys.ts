/**
 * Where the catalog keeps its data in etcd, under one prefix (default /trellis):
 *
 *   <prefix>/log/<id>                      one command (JSON), put once; its revision is its index
 *   <prefix>/snapshot                      "<index, 20 digits> <json meta>": the newest snapshot
 *   <prefix>/snapshot-data/<index>-<id>/<n> the snapshot's bytes in chunks (etcd caps a request)
 *   <prefix>/log-head                      put in the same txn as every log entry: its mod
 *                                          revision is the newest entry's index (one cheap get)
 *   <prefix>/ca-keys/<root id>             a CA root's private key, AES-256-GCM encrypted
 *   <prefix>/restore-data/<id>/<n>         a restored state's bytes, until a snapshot covers it
 *   <prefix>/sign-bucket/<node>            a node's certificate signing bucket (under a lease)
 *
 * Indexes are zero-padded so that etcd's byte-wise value and key comparisons order them.
 */
export interface EtcdKeys {
  logPrefix: string;
  snapshot: string;
  snapshotDataPrefix: string;
  logHead: string;
  caKeysPrefix: string;
  restoreDataPrefix: string;
  signBucketPrefix: string;
  /** The chunk prefix of one restored state (`trellis snapshot restore`). */
  restoreChunksOf(id: string): string;
  /** The chunk prefix of one snapshot. */
  chunksOf(index: number, id: string): string;
}

export function etcdKeys(prefix: string): EtcdKeys {
  return {
    logPrefix: `${prefix}/log/`,
    snapshot: `${prefix}/snapshot`,
    snapshotDataPrefix: `${prefix}/snapshot-data/`,
    logHead: `${prefix}/log-head`,
    caKeysPrefix: `${prefix}/ca-keys/`,
    restoreDataPrefix: `${prefix}/restore-data/`,
    signBucketPrefix: `${prefix}/sign-bucket/`,
    restoreChunksOf: (id) => `${prefix}/restore-data/${id}/`,
    chunksOf: (index, id) => `${prefix}/snapshot-data/${padIndex(index)}-${id}/`,
  };
}

export function padIndex(n: number): string {
  return String(n).padStart(20, '0');
}

/** The end of a prefix range: the prefix with its last byte incremented (etcd's convention). */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      b[i]! += 1;
      return b.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
