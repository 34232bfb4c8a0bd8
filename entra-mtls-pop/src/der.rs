//! The few DER constructs a PKCS#10 request needs: a tag-length-value writer and OID encoding.

pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const NULL: u8 = 0x05;
pub(crate) const OID: u8 = 0x06;
pub(crate) const UTF8_STRING: u8 = 0x0C;
pub(crate) const IA5_STRING: u8 = 0x16;
pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;

/// A context-specific, constructed tag (`[n]`).
pub(crate) const fn context(n: u8) -> u8 {
    0xA0 | n
}

/// One TLV: `tag`, the DER length of `contents`, then `contents`.
pub(crate) fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = Vec::with_capacity(contents.len() + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// A constructed TLV whose contents are `parts` concatenated.
pub(crate) fn constructed(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// A small non-negative INTEGER.
pub(crate) fn small_integer(value: u8) -> Vec<u8> {
    if value < 0x80 {
        tlv(INTEGER, &[value])
    } else {
        tlv(INTEGER, &[0, value])
    }
}

/// An OBJECT IDENTIFIER from its arcs (at least two; the first 0, 1 or 2).
pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut push_arc = |mut arc: u64| {
        let mut chunk = vec![(arc & 0x7F) as u8];
        arc >>= 7;
        while arc > 0 {
            chunk.push(0x80 | (arc & 0x7F) as u8);
            arc >>= 7;
        }
        chunk.reverse();
        body.extend_from_slice(&chunk);
    };
    push_arc(arcs[0] * 40 + arcs[1]);
    for &arc in &arcs[2..] {
        push_arc(arc);
    }
    tlv(OID, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_shortest_form() {
        assert_eq!(tlv(OID, &[1; 3])[..2], [OID, 3]);
        assert_eq!(tlv(SEQUENCE, &[0; 127])[..2], [SEQUENCE, 127]);
        assert_eq!(tlv(SEQUENCE, &[0; 128])[..3], [SEQUENCE, 0x81, 128]);
        assert_eq!(tlv(SEQUENCE, &[0; 300])[..4], [SEQUENCE, 0x82, 0x01, 0x2C]);
    }

    #[test]
    fn oids_and_integers() {
        // 1.3.6.1.4.1.311.90.2.10 and 0.9.2342.19200300.100.1.25 as every DER encoder writes them.
        assert_eq!(
            oid(&[1, 3, 6, 1, 4, 1, 311, 90, 2, 10]),
            [
                0x06, 0x0A, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x5A, 0x02, 0x0A
            ]
        );
        assert_eq!(
            oid(&[0, 9, 2342, 19_200_300, 100, 1, 25]),
            [
                0x06, 0x0A, 0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x19
            ]
        );
        assert_eq!(small_integer(0), [0x02, 0x01, 0x00]);
        assert_eq!(small_integer(32), [0x02, 0x01, 0x20]);
        assert_eq!(small_integer(200), [0x02, 0x02, 0x00, 200]);
    }
}
