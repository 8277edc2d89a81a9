/**
 * Decoding of Huffman-coded HPACK string literals (RFC 7541 5.2). The code of Appendix B
 * becomes a binary tree once, at load; decoding walks it a bit at a time. Header strings are
 * short, so the walk costs less than building the usual multi-bit tables would be worth.
 */
import { HUFFMAN_CODE } from './hpack-huffman-code.js';

const EOS = 256;

/**
 * The tree: node n has children tree[2n] (bit 0) and tree[2n + 1] (bit 1). A child > 0 is an
 * inner node, a child < 0 is the leaf of symbol -child - 1, 0 is "no such code".
 */
const tree = buildTree();

function buildTree(): Int32Array {
  // A complete prefix code over 257 symbols has 256 inner nodes.
  const t = new Int32Array(2 * 256);
  let nodes = 1;
  HUFFMAN_CODE.forEach(([code, bits], sym) => {
    let n = 0;
    for (let i = bits - 1; i > 0; i--) {
      const slot = 2 * n + ((code >>> i) & 1);
      if (t[slot]! < 0) throw new Error(`huffman code of ${sym} runs through a leaf`);
      if (t[slot] === 0) t[slot] = nodes++;
      n = t[slot]!;
    }
    const slot = 2 * n + (code & 1);
    if (t[slot] !== 0) throw new Error(`huffman code of ${sym} is not a leaf`);
    t[slot] = -sym - 1;
  });
  return t;
}

/**
 * Decodes `src` into `out` (which must hold at least huffmanMaxLength(src.length) bytes);
 * returns the decoded length, or -1 when the input is not a valid Huffman string: it contains
 * EOS, or ends in padding that is longer than 7 bits or not a prefix of EOS (all ones).
 */
export function huffmanDecode(src: Uint8Array, out: Uint8Array): number {
  let n = 0;
  let len = 0;
  /** Bits read since the last symbol, and whether they were all ones (EOS's prefix). */
  let depth = 0;
  let ones = true;
  for (let i = 0; i < src.length; i++) {
    const byte = src[i]!;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >>> b) & 1;
      const next = tree[2 * n + bit]!;
      if (next === 0) return -1; // cannot happen with a complete code; never loop on one
      if (next < 0) {
        const sym = -next - 1;
        if (sym === EOS) return -1;
        out[len++] = sym;
        n = 0;
        depth = 0;
        ones = true;
      } else {
        n = next;
        depth++;
        if (bit === 0) ones = false;
      }
    }
  }
  return depth > 7 || !ones ? -1 : len;
}

/** The most octets `encodedLength` octets of Huffman code can decode to (shortest code: 5 bits). */
export const huffmanMaxLength = (encodedLength: number): number =>
  Math.ceil((encodedLength * 8) / 5);
