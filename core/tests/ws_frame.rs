//! WebSocket frames (SPEC §7, RFC 6455 §5): the RFC's own examples, encoder
//! to decoder round trips, every header violation, and split-anywhere.

use bytes::Bytes;
use mpnet_core::ws::frame::{
    apply_mask, encode_frame, FixedMask, Frame, FrameDecoder, MaskSource, ProtocolViolation, Role,
};
use proptest::prelude::*;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

const TEXT: OpCode = OpCode::Data(Data::Text);
const BINARY: OpCode = OpCode::Data(Data::Binary);
const CONTINUE: OpCode = OpCode::Data(Data::Continue);
const PING: OpCode = OpCode::Control(Control::Ping);
const PONG: OpCode = OpCode::Control(Control::Pong);
const CLOSE: OpCode = OpCode::Control(Control::Close);
const RFC_MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn encode(fin: bool, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, fin, opcode, payload, mask);
    out
}

/// Decodes every frame of `wire`, fed in one piece.
fn decode_all(role: Role, wire: &[u8]) -> Result<Vec<Frame>, ProtocolViolation> {
    let mut dec = FrameDecoder::new(role, 1 << 24);
    let mut frames = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let (n, frame) = dec.decode(rest)?;
        rest = &rest[n..];
        frames.extend(frame);
        if n == 0 {
            break;
        }
    }
    Ok(frames)
}

/// Decodes `wire` fed in pieces cut at `cuts`.
fn decode_split(role: Role, wire: &[u8], cuts: &[usize]) -> Result<Vec<Frame>, ProtocolViolation> {
    let mut dec = FrameDecoder::new(role, 1 << 24);
    let mut frames = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.push(0);
    points.push(wire.len());
    points.sort_unstable();
    points.dedup();
    for pair in points.windows(2) {
        let mut piece = &wire[pair[0]..pair[1]];
        while !piece.is_empty() {
            let (n, frame) = dec.decode(piece)?;
            assert!(n > 0, "a decoder given input consumes some");
            piece = &piece[n..];
            frames.extend(frame);
        }
    }
    Ok(frames)
}

#[test]
fn rfc6455_section_5_7_examples() {
    // A single-frame unmasked text message.
    assert_eq!(
        encode(true, TEXT, b"Hello", None),
        [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    // A single-frame masked text message.
    assert_eq!(
        encode(true, TEXT, b"Hello", Some(RFC_MASK)),
        [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    );
    // A fragmented unmasked text message.
    assert_eq!(
        encode(false, TEXT, b"Hel", None),
        [0x01, 0x03, 0x48, 0x65, 0x6c]
    );
    assert_eq!(
        encode(true, CONTINUE, b"lo", None),
        [0x80, 0x02, 0x6c, 0x6f]
    );
    // Unmasked ping, masked pong ("Hello" both).
    assert_eq!(
        encode(true, PING, b"Hello", None),
        [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    assert_eq!(
        encode(true, PONG, b"Hello", Some(RFC_MASK)),
        [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    );
    // 256 bytes binary in a single unmasked frame.
    let wire = encode(true, BINARY, &[0xAB; 256], None);
    assert_eq!(&wire[..4], [0x82, 0x7E, 0x01, 0x00]);
    assert_eq!(wire.len(), 4 + 256);
    // 64 KiB binary in a single unmasked frame.
    let wire = encode(true, BINARY, &vec![0; 65536], None);
    assert_eq!(
        &wire[..10],
        [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
    );
}

#[test]
fn rfc_examples_decode_on_both_sides() {
    let frames = decode_all(Role::Client, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]).unwrap();
    assert_eq!(
        frames,
        [Frame {
            fin: true,
            opcode: TEXT,
            payload: Bytes::from_static(b"Hello")
        }]
    );
    let masked = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let frames = decode_all(Role::Server, &masked).unwrap();
    assert_eq!(&frames[0].payload[..], b"Hello");
    // The wrong side's masking is a violation either way.
    assert_eq!(
        decode_all(Role::Client, &masked),
        Err(ProtocolViolation::BadMasking)
    );
    assert_eq!(
        decode_all(Role::Server, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
        Err(ProtocolViolation::BadMasking)
    );
}

#[test]
fn fixed_mask_source_reproduces_rfc_bytes() {
    let mut source = FixedMask(RFC_MASK);
    let frame = Frame {
        fin: true,
        opcode: TEXT,
        payload: Bytes::from_static(b"Hello"),
    };
    let mut out = Vec::new();
    frame.encode(Some(source.mask()), &mut out);
    assert_eq!(
        out,
        [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    );
    // A closure is a mask source too.
    let mut n = 0u8;
    let mut counter = move || {
        n += 1;
        [n; 4]
    };
    assert_eq!(MaskSource::mask(&mut counter), [1; 4]);
    assert_eq!(MaskSource::mask(&mut counter), [2; 4]);
}

#[test]
fn header_violations() {
    let cases: Vec<(Vec<u8>, ProtocolViolation)> = vec![
        (vec![0xC1, 0x00], ProtocolViolation::ReservedBits(4)),
        (vec![0xA1, 0x00], ProtocolViolation::ReservedBits(2)),
        (vec![0x91, 0x00], ProtocolViolation::ReservedBits(1)),
        (vec![0x83, 0x00], ProtocolViolation::ReservedOpcode(3)),
        (vec![0x87, 0x00], ProtocolViolation::ReservedOpcode(7)),
        (vec![0x8B, 0x00], ProtocolViolation::ReservedOpcode(0xB)),
        (vec![0x8F, 0x00], ProtocolViolation::ReservedOpcode(0xF)),
        (vec![0x09, 0x00], ProtocolViolation::FragmentedControl),
        (vec![0x08, 0x00], ProtocolViolation::FragmentedControl),
        (
            vec![0x89, 0x7E, 0x00, 0x7E],
            ProtocolViolation::ControlTooLong(126),
        ),
        (vec![0x8A, 0x7F], ProtocolViolation::ControlTooLong(127)),
        (
            vec![0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0],
            ProtocolViolation::LengthOverflow,
        ),
        (
            vec![0x81, 0x81, 1, 2, 3, 4, 0],
            ProtocolViolation::BadMasking,
        ),
    ];
    for (wire, want) in cases {
        assert_eq!(
            decode_all(Role::Client, &wire),
            Err(want.clone()),
            "{wire:x?}"
        );
        assert_eq!(want.close_code(), 1002);
        // The violation is found as soon as its bytes are in, one byte at a time too.
        let cuts: Vec<usize> = (0..wire.len()).collect();
        assert_eq!(
            decode_split(Role::Client, &wire, &cuts),
            Err(want),
            "{wire:x?}"
        );
    }
}

#[test]
fn data_payload_budget_is_checked_from_the_header() {
    let mut dec = FrameDecoder::new(Role::Client, 10);
    // 11 bytes claimed: refused before any payload arrives.
    assert_eq!(
        dec.decode(&[0x82, 11]),
        Err(ProtocolViolation::MessageTooLarge { max: 10 })
    );
    // Control frames are not data: a 20-byte ping passes a 10-byte budget.
    let mut dec = FrameDecoder::new(Role::Client, 10);
    let wire = encode(true, PING, &[1; 20], None);
    assert_eq!(dec.decode(&wire).unwrap().0, wire.len());
    // A huge claimed length allocates nothing up front.
    let mut dec = FrameDecoder::new(Role::Client, usize::MAX);
    let (n, frame) = dec
        .decode(&[0x82, 0x7F, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 1])
        .unwrap();
    assert_eq!((n, frame), (11, None));
    assert_eq!(dec.partial().unwrap().header.len, 0x7F_FFFF_FFFF);
    assert_eq!(dec.partial().unwrap().payload, [1]);
    assert_eq!(
        ProtocolViolation::MessageTooLarge { max: 1 }.close_code(),
        1009
    );
}

#[test]
fn partial_frames_expose_their_prefix() {
    let mut dec = FrameDecoder::new(Role::Server, 100);
    let wire = encode(true, TEXT, b"abcdef", Some([9, 8, 7, 6]));
    assert!(dec.is_idle());
    let (n, frame) = dec.decode(&wire[..9]).unwrap();
    assert_eq!((n, frame), (9, None));
    let partial = dec.partial().unwrap();
    assert_eq!(partial.header.opcode, TEXT);
    assert_eq!(partial.header.len, 6);
    assert_eq!(partial.payload, b"abc");
    let (_, frame) = dec.decode(&wire[9..]).unwrap();
    assert_eq!(&frame.unwrap().payload[..], b"abcdef");
    assert!(dec.is_idle());
}

fn opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(TEXT),
        Just(BINARY),
        Just(CONTINUE),
        Just(PING),
        Just(PONG),
        Just(CLOSE)
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        opcode(),
        any::<bool>(),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..130),
            proptest::collection::vec(any::<u8>(), 120..70_000),
        ],
    )
        .prop_map(|(opcode, fin, mut payload)| {
            let control = matches!(opcode, OpCode::Control(_));
            if control {
                payload.truncate(125);
            }
            Frame {
                fin: fin || control,
                opcode,
                payload: Bytes::from(payload),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Client frames (masked with any mask) decode back to the same frames
    /// on the server side, however the bytes are split.
    #[test]
    fn masked_round_trip_split_anywhere(
        frames in proptest::collection::vec((frame(), any::<[u8; 4]>()), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = Vec::new();
        for (frame, mask) in &frames {
            frame.encode(Some(*mask), &mut wire);
        }
        let want: Vec<Frame> = frames.iter().map(|(f, _)| f.clone()).collect();
        prop_assert_eq!(decode_all(Role::Server, &wire).unwrap(), want.clone());
        prop_assert_eq!(decode_split(Role::Server, &wire, &cuts).unwrap(), want);
    }

    /// The word-at-a-time mask equals RFC 6455 §5.3's byte-by-byte rule
    /// (octet i XOR key[i mod 4]) at every length and starting offset, and
    /// the encoder's masked payload is exactly that.
    #[test]
    fn mask_matches_the_bytewise_rule(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        key in any::<[u8; 4]>(),
        offset in 0usize..16,
    ) {
        let want: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[(offset + i) % 4])
            .collect();
        let mut got = data.clone();
        apply_mask(&mut got, key, offset);
        prop_assert_eq!(&got, &want);
        let mut wire = Vec::new();
        encode_frame(&mut wire, true, OpCode::Data(Data::Binary), &data, Some(key));
        let masked = &wire[wire.len() - data.len()..];
        let bytewise: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
        prop_assert_eq!(masked, &bytewise[..]);
    }

    /// Unmasked server frames round-trip on the client side.
    #[test]
    fn unmasked_round_trip(frames in proptest::collection::vec(frame(), 1..6)) {
        let mut wire = Vec::new();
        for frame in &frames {
            frame.encode(None, &mut wire);
        }
        prop_assert_eq!(decode_all(Role::Client, &wire).unwrap(), frames);
    }

    /// Arbitrary bytes: the same frames and the same violation whole or split.
    #[test]
    fn garbage_is_split_invariant(
        wire in proptest::collection::vec(any::<u8>(), 0..300),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let whole = decode_all(Role::Client, &wire);
        let split = decode_split(Role::Client, &wire, &cuts);
        match (whole, split) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "whole {:?} vs split {:?}", a, b),
        }
    }
}

/// Binary payloads come from one reused buffer: once the app has dropped a
/// message, the next one of the same size lands in the same memory; a
/// message still held is never written over.
#[test]
fn binary_payloads_reuse_a_dropped_buffer() {
    let a = vec![0xaa; 70_000];
    let b = vec![0xbb; 70_000];
    let mut wire = encode(true, BINARY, &a, None);
    wire.extend(encode(true, BINARY, &b, None));
    wire.extend(encode(true, BINARY, &a, None));
    let mut dec = FrameDecoder::new(Role::Client, 1 << 24);
    let (n1, first) = dec.decode(&wire).unwrap();
    let first = first.unwrap().payload;
    let (n2, second) = dec.decode(&wire[n1..]).unwrap();
    let second = second.unwrap().payload;
    // Both held: distinct memory, both intact.
    assert_ne!(first.as_ptr(), second.as_ptr());
    assert_eq!((&first[..], &second[..]), (&a[..], &b[..]));
    let at = second.as_ptr();
    drop(first);
    drop(second);
    let (_, third) = dec.decode(&wire[n1 + n2..]).unwrap();
    let third = third.unwrap().payload;
    assert_eq!(&third[..], &a[..]);
    assert_eq!(third.as_ptr(), at, "the dropped message's buffer is reused");
}
