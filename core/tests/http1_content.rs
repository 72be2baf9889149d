//! The Content-Encoding decoder: round trips through flate2's encoders fed
//! in arbitrary pieces, a 256 MiB gzip bomb that must stop at the limit
//! without the output growing past it, and corrupt or truncated streams.

use std::io::Write;

use flate2::{Compress, Compression, Crc, FlushCompress};
use mpnet_core::http1::{ContentDecoder, ProtocolError};
use proptest::prelude::*;
use proptest::sample::Index;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Decodes `coded` pushed in the pieces `cuts` make, then finishes.
fn decode(coding: &[u8], coded: &[u8], cuts: &[usize], max: u64) -> Result<Vec<u8>, ProtocolError> {
    let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(coded.len())).collect();
    points.push(0);
    points.push(coded.len());
    points.sort_unstable();
    points.dedup();
    let mut dec = ContentDecoder::new(Some(coding), max);
    let mut out = Vec::new();
    for p in points.windows(2) {
        dec.push(&coded[p[0]..p[1]], &mut out)?;
    }
    dec.finish(&mut out)?;
    assert_eq!(dec.total_out(), out.len() as u64);
    Ok(out)
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..3000),
        // Compressible: few distinct bytes, long.
        prop::collection::vec(prop::sample::select(b"ab \n".to_vec()), 0..50_000),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_split_anywhere(data in data(), cuts in prop::collection::vec(any::<Index>(), 0..16)) {
        for (coding, coded) in [
            (&b"gzip"[..], gzip(&data)),
            (b"x-gzip", gzip(&data)),
            (b"deflate", zlib(&data)),
            (b"deflate", raw_deflate(&data)),
            (b"identity", data.clone()),
            (b"br", data.clone()),
        ] {
            let cuts: Vec<usize> = cuts.iter().map(|i| i.index(coded.len() + 1)).collect();
            let whole = decode(coding, &coded, &[], u64::MAX).unwrap();
            prop_assert_eq!(&whole, &data);
            prop_assert_eq!(decode(coding, &coded, &cuts, u64::MAX).unwrap(), whole);
        }
    }

    /// Any strict prefix of a compressed stream is refused by `finish`,
    /// never accepted as a shorter body.
    #[test]
    fn truncated_is_refused(data in data(), at in any::<Index>()) {
        for (coding, coded) in [(&b"gzip"[..], gzip(&data)), (b"deflate", zlib(&data)), (b"deflate", raw_deflate(&data))] {
            let cut = 1 + at.index(coded.len() - 1);
            let got = decode(coding, &coded[..cut], &[], u64::MAX);
            prop_assert!(matches!(got, Err(ProtocolError::BadContentEncoding(_))), "{:?} cut {}: {:?}", coding, cut, got.map(|v| v.len()));
        }
    }

    /// The limit holds exactly: a body of `n` bytes passes with `max >= n`
    /// and fails with `max < n`, however it is split.
    #[test]
    fn limit_is_exact(data in data(), cuts in prop::collection::vec(any::<Index>(), 0..8), less in 1u64..100) {
        let coded = gzip(&data);
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(coded.len() + 1)).collect();
        let n = data.len() as u64;
        prop_assert_eq!(decode(b"gzip", &coded, &cuts, n).unwrap(), data);
        if n > 0 {
            let max = n.saturating_sub(less);
            prop_assert_eq!(decode(b"gzip", &coded, &cuts, max), Err(ProtocolError::BodyTooLarge { max }));
        }
    }
}

#[test]
fn gzip_header_fields_and_members() {
    let body = b"the body".to_vec();
    let mut e = flate2::GzBuilder::new()
        .filename("name.txt")
        .comment("a comment")
        .extra(vec![1, 2, 3, 4])
        .mtime(12345)
        .write(Vec::new(), Compression::best());
    e.write_all(&body).unwrap();
    let fancy = e.finish().unwrap();
    for step in [1, 2, 5, fancy.len()] {
        let cuts: Vec<usize> = (0..fancy.len()).step_by(step).collect();
        assert_eq!(decode(b"gzip", &fancy, &cuts, 1000).unwrap(), body);
    }

    // FHCRC: two header-CRC bytes after a plain 10-byte header.
    let plain = gzip(b"crc");
    let mut hcrc = plain[..10].to_vec();
    hcrc[3] |= 0x02;
    hcrc.extend_from_slice(&[0xaa, 0xbb]);
    hcrc.extend_from_slice(&plain[10..]);
    assert_eq!(decode(b"gzip", &hcrc, &[], 1000).unwrap(), b"crc");

    // Two members, then trailing garbage (ignored, as browsers do).
    let mut two = gzip(b"one ");
    two.extend_from_slice(&gzip(b"two"));
    two.extend_from_slice(b"\0\0junk");
    let every: Vec<usize> = (0..two.len()).collect();
    assert_eq!(decode(b"gzip", &two, &every, 1000).unwrap(), b"one two");
}

#[test]
fn corrupt_streams() {
    let bad = |coding: &[u8], coded: &[u8]| {
        let got = decode(coding, coded, &[], 1 << 20);
        assert!(
            matches!(got, Err(ProtocolError::BadContentEncoding(_))),
            "{coded:?}: {got:?}"
        );
    };
    bad(b"gzip", b"not gzip at all");
    let mut method = gzip(b"x");
    method[2] = 7;
    bad(b"gzip", &method);
    let mut reserved = gzip(b"x");
    reserved[3] = 0x80;
    bad(b"gzip", &reserved);
    let mut crc = gzip(b"hello");
    let n = crc.len();
    crc[n - 8] ^= 1;
    bad(b"gzip", &crc);
    let mut size = gzip(b"hello");
    size[n - 1] ^= 1;
    bad(b"gzip", &size);
    let mut adler = zlib(b"hello");
    let n = adler.len();
    adler[n - 1] ^= 1;
    bad(b"deflate", &adler);
    bad(b"deflate", &[0xff; 32]);
    // Truncated right after the header.
    bad(b"gzip", &gzip(b"hello")[..10]);
    bad(b"deflate", &zlib(b"hello")[..1]);

    // Errors are sticky.
    let mut dec = ContentDecoder::new(Some(b"gzip"), 100);
    let mut out = Vec::new();
    assert!(dec.push(b"nope, not gzip", &mut out).is_err());
    assert!(dec.push(&gzip(b"fine"), &mut out).is_err());
    assert!(dec.finish(&mut out).is_err());
}

/// A gzip member of `segments` MiB of zeros, built without ever holding
/// the zeros compressed whole: after the first MiB the compressor's output
/// for each further MiB (sync-flushed, window full of zeros) is the same
/// bytes, which are repeated.
fn zero_bomb(segments: usize) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut segment = || {
        let mut out = Vec::with_capacity(1 << 16);
        let mut input = &zeros[..];
        loop {
            let before = c.total_in();
            out.reserve(1 << 16);
            c.compress_vec(input, &mut out, FlushCompress::Sync)
                .unwrap();
            input = &input[(c.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return out;
            }
        }
    };
    let first = segment();
    let second = segment();
    assert_eq!(segment(), second, "the repeated segment is stable");
    let mut finish = Vec::with_capacity(64);
    c.compress_vec(&[], &mut finish, FlushCompress::Finish)
        .unwrap();

    let mut one = Crc::new();
    one.update(&zeros);
    let mut crc = Crc::new();
    for _ in 0..segments {
        crc.combine(&one);
    }

    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    gz.extend_from_slice(&first);
    for _ in 1..segments {
        gz.extend_from_slice(&second);
    }
    gz.extend_from_slice(&finish);
    gz.extend_from_slice(&crc.sum().to_le_bytes());
    gz.extend_from_slice(&((segments as u64 * (1 << 20)) as u32).to_le_bytes());
    gz
}

#[test]
fn bomb_builder_makes_a_valid_stream() {
    let small = zero_bomb(3);
    let out = decode(b"gzip", &small, &[], 3 << 20).unwrap();
    assert_eq!(out.len(), 3 << 20);
    assert!(out.iter().all(|&b| b == 0));
}

#[test]
fn gzip_bomb_stops_at_the_limit() {
    let bomb = zero_bomb(256); // 256 MiB of zeros
    assert!(
        bomb.len() < 1 << 20,
        "the bomb itself is small: {}",
        bomb.len()
    );
    let max = 1u64 << 20;
    let mut dec = ContentDecoder::new(Some(b"gzip"), max);
    let mut out = Vec::new();
    let mut result = Ok(());
    for piece in bomb.chunks(4096) {
        result = dec.push(piece, &mut out);
        assert!(out.len() as u64 <= max, "output grew to {}", out.len());
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(ProtocolError::BodyTooLarge { max }));
    assert!(dec.total_out() <= max);
    // Pushed whole, in one call: the same.
    let mut dec = ContentDecoder::new(Some(b"gzip"), max);
    let mut out = Vec::new();
    assert_eq!(
        dec.push(&bomb, &mut out),
        Err(ProtocolError::BodyTooLarge { max })
    );
    assert!(out.len() as u64 <= max);
    assert!(out.capacity() as u64 <= 2 * max + (32 << 10));
}
