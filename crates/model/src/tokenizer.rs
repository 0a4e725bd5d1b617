//! The byte tokenizer: token = byte + 1, and 0 pads.

/// The padding token.
pub const PAD: u16 = 0;

/// Token ids of `bytes`, right-padded with [`PAD`] to `padded_len` (docs/design.md §1 step 1).
///
/// Any byte sequence is valid input: the model reads bytes, not characters, so invalid UTF-8
/// needs no special case.
pub fn encode(bytes: &[u8], padded_len: usize) -> Vec<u16> {
    let mut ids: Vec<u16> = bytes.iter().map(|&b| u16::from(b) + 1).collect();
    ids.resize(padded_len.max(bytes.len()), PAD);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_bytes_and_pads() {
        assert_eq!(encode(&[0, 255, b'a'], 5), vec![1, 256, 98, 0, 0]);
        assert_eq!(encode(&[0xff, 0xfe], 2), vec![256, 255]);
    }
}
