//! HPACK's Huffman code (RFC 7541 section 5.2): decoding walks a binary tree
//! built once from the code table, a bit at a time; a string that ends in
//! more than 7 bits of padding, in padding that is not all ones, or that
//! holds the EOS symbol is an error.

use std::sync::OnceLock;

use super::huffman_codes::CODES;

/// A child that is a symbol, not a node.
const LEAF: u16 = 0x8000;
/// The end-of-string symbol, which a string must never contain.
const EOS: u16 = 256;

/// The tree: node 0 is the root; each node's two children (by bit) are a
/// node's index, or `LEAF | symbol`. 0 is no child (the root is nobody's).
fn tree() -> &'static [[u16; 2]] {
    static TREE: OnceLock<Vec<[u16; 2]>> = OnceLock::new();
    TREE.get_or_init(|| {
        let mut nodes = vec![[0u16; 2]];
        for (symbol, &(bits, code)) in CODES.iter().enumerate() {
            let mut node = 0;
            for at in (0..bits).rev() {
                let bit = usize::from((code >> at) & 1 == 1);
                if at == 0 {
                    nodes[node][bit] = LEAF | symbol as u16;
                } else {
                    if nodes[node][bit] == 0 {
                        nodes.push([0; 2]);
                        nodes[node][bit] = (nodes.len() - 1) as u16;
                    }
                    node = usize::from(nodes[node][bit]);
                }
            }
        }
        nodes
    })
}

/// A Huffman string that is not one.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Invalid;

/// Appends the decoding of `input` to `out`.
pub(super) fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), Invalid> {
    let tree = tree();
    let mut node = 0usize;
    // Bits read since the last symbol, and whether they were all ones: what
    // is left at the end is padding, a prefix of EOS shorter than a byte.
    let (mut pending, mut all_ones) = (0u32, true);
    for byte in input {
        for shift in (0..8).rev() {
            let bit = (byte >> shift) & 1;
            let next = tree.get(node).ok_or(Invalid)?[usize::from(bit)];
            pending += 1;
            all_ones &= bit == 1;
            if next & LEAF != 0 {
                let symbol = next & !LEAF;
                if symbol == EOS {
                    return Err(Invalid);
                }
                out.push(symbol as u8);
                (node, pending, all_ones) = (0, 0, true);
            } else if next == 0 {
                return Err(Invalid);
            } else {
                node = usize::from(next);
            }
        }
    }
    if pending > 7 || !all_ones {
        return Err(Invalid);
    }
    Ok(())
}

/// The Huffman encoding of `input`, padded with ones: the tests' and the
/// product harness's encoder (the server's own encoder sends raw strings).
#[cfg(any(test, feature = "harness"))]
pub(super) fn encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    for &byte in input {
        let (len, code) = CODES[usize::from(byte)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1 << pad) - 1)) as u8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_7541_c_4_1_decodes() {
        // "www.example.com", Appendix C.4.1.
        let coded = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut out = Vec::new();
        decode(&coded, &mut out).expect("valid");
        assert_eq!(out, b"www.example.com");
        assert_eq!(encode(b"www.example.com"), coded);
    }

    #[test]
    fn bad_padding_and_eos_are_refused() {
        let mut out = Vec::new();
        // 'a' is 00011 (5 bits): padded with zeros instead of ones.
        assert_eq!(decode(&[0b0001_1000], &mut out), Err(Invalid));
        // A whole byte of ones after a symbol is padding longer than 7 bits.
        assert_eq!(decode(&[0b0001_1111, 0xff], &mut out), Err(Invalid));
        // EOS itself: 30 ones.
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xfc], &mut out), Err(Invalid));
        out.clear();
        assert_eq!(decode(&[0b0001_1111], &mut out), Ok(()));
        assert_eq!(out, b"a");
    }

    proptest! {
        #[test]
        fn every_string_comes_back(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            prop_assert_eq!(decode(&encode(&input), &mut out), Ok(()));
            prop_assert_eq!(out, input);
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panicking(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&input, &mut Vec::new());
        }
    }
}
