//! One WebSocket connection (SPEC §7): messages, fragments, pings, UTF-8
//! fail-fast, size limit, the close handshake in both directions, and the
//! event-order invariant; split-anywhere and lifecycle property tests.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mpnet_core::ws::frame::{encode_frame, Frame, FrameDecoder, Role};
use mpnet_core::ws::{Connection, ConnectionConfig, MessageData, SendOptions, SocketEvent};
use mpnet_core::{Api, Error, ErrorKind};
use proptest::prelude::*;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

const TEXT: OpCode = OpCode::Data(Data::Text);
const BINARY: OpCode = OpCode::Data(Data::Binary);
const CONTINUE: OpCode = OpCode::Data(Data::Continue);
const PING: OpCode = OpCode::Control(Control::Ping);
const PONG: OpCode = OpCode::Control(Control::Pong);
const CLOSE: OpCode = OpCode::Control(Control::Close);

/// Masks 1, 2, 3, ... so runs are reproducible.
fn counter() -> impl FnMut() -> [u8; 4] + Send {
    let mut n = 0u32;
    move || {
        n = n.wrapping_add(1);
        n.to_be_bytes()
    }
}

fn conn_with(max_message_bytes: usize) -> Connection {
    let mut config = ConnectionConfig::default().close_timeout(Duration::from_secs(5));
    config.max_message_bytes = max_message_bytes;
    Connection::new(config, Box::new(counter()))
}

fn conn() -> Connection {
    conn_with(16 * 1024 * 1024)
}

/// An unmasked server frame.
fn frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, fin, opcode, payload, None);
    out
}

fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    frame(true, CLOSE, &payload)
}

fn events(c: &mut Connection) -> Vec<SocketEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// The frames the client wrote, unmasked (a server-side decoder refuses
/// unmasked frames, so this also checks every frame is masked).
fn sent(c: &mut Connection) -> Vec<Frame> {
    let wire = c.poll_transmit().unwrap_or_default();
    let mut dec = FrameDecoder::new(Role::Server, usize::MAX);
    let mut rest = &wire[..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (n, f) = dec
            .decode(rest)
            .expect("client frames are valid and masked");
        rest = &rest[n..];
        frames.extend(f);
    }
    frames
}

fn text(s: &str) -> SocketEvent {
    SocketEvent::Message {
        data: MessageData::Text(s.into()),
    }
}

fn close(code: u16, reason: &str) -> SocketEvent {
    SocketEvent::Close {
        code,
        reason: reason.into(),
    }
}

fn close_code_of(f: &Frame) -> u16 {
    assert_eq!(f.opcode, CLOSE);
    u16::from_be_bytes([f.payload[0], f.payload[1]])
}

fn error_code(e: &SocketEvent) -> u32 {
    match e {
        SocketEvent::Error(e) => e.code(Api::Socket),
        other => panic!("not an error event: {other:?}"),
    }
}

/// Feeds `wire` and expects a failure with close `code`: the error event,
/// our close frame, and after the peer goes, the close event.
fn assert_fails(mut c: Connection, wire: &[u8], code: u16, error: u32) {
    let now = Instant::now();
    assert_eq!(c.handle_input(now, wire), wire.len());
    let evs = events(&mut c);
    let err = evs.last().expect("an error event");
    assert_eq!(error_code(err), error, "{evs:?}");
    let frames = sent(&mut c);
    assert_eq!(close_code_of(frames.last().unwrap()), code);
    assert!(c.is_closing());
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(5)));
    // Anything more is discarded; the peer then drops the connection.
    assert_eq!(c.handle_input(now, &frame(true, TEXT, b"late")), 6);
    c.handle_eof();
    assert_eq!(
        events(&mut c),
        [close(
            code,
            if code == 1007 {
                "invalid UTF-8 in a text message"
            } else if code == 1009 {
                "message too large"
            } else {
                "protocol error"
            }
        )]
    );
    assert!(c.is_terminated());
}

#[test]
fn open_comes_first_and_messages_arrive() {
    let mut c = conn();
    let now = Instant::now();
    let mut wire = frame(true, TEXT, "héllo".as_bytes());
    wire.extend(frame(true, BINARY, &[0, 255]));
    wire.extend(frame(true, TEXT, b""));
    assert_eq!(c.handle_input(now, &wire), wire.len());
    assert_eq!(
        events(&mut c),
        [
            SocketEvent::Open,
            text("héllo"),
            SocketEvent::Message {
                data: MessageData::Binary(Bytes::from_static(&[0, 255]))
            },
            text(""),
        ]
    );
    assert!(c.poll_transmit().is_none());
    assert!(c.is_open() && c.wants_read() && c.poll_timeout().is_none());
}

#[test]
fn fragments_are_reassembled_with_pings_between() {
    let mut c = conn();
    let now = Instant::now();
    let euro = "€".as_bytes(); // 3 bytes, cut across fragments
    let mut wire = frame(false, TEXT, &[b'a', euro[0]]);
    wire.extend(frame(true, PING, b"p1"));
    wire.extend(frame(false, CONTINUE, &euro[1..2]));
    wire.extend(frame(true, PONG, b"unsolicited"));
    wire.extend(frame(false, CONTINUE, b""));
    wire.extend(frame(true, PING, b""));
    wire.extend(frame(true, CONTINUE, &[euro[2], b'z']));
    c.handle_input(now, &wire);
    assert_eq!(events(&mut c), [SocketEvent::Open, text("a€z")]);
    let pongs = sent(&mut c);
    assert_eq!(pongs.len(), 2);
    assert!(pongs.iter().all(|f| f.opcode == PONG && f.fin));
    assert_eq!(&pongs[0].payload[..], b"p1");
    assert_eq!(&pongs[1].payload[..], b"");

    let mut wire = frame(false, BINARY, &[1]);
    wire.extend(frame(true, CONTINUE, &[2, 3]));
    c.handle_input(now, &wire);
    assert_eq!(
        events(&mut c),
        [SocketEvent::Message {
            data: MessageData::Binary(Bytes::from_static(&[1, 2, 3]))
        }]
    );
}

#[test]
fn pong_payload_is_the_ping_payload_masked() {
    let mut c = conn();
    c.handle_input(Instant::now(), &frame(true, PING, b"Hello"));
    // Mask 00 00 00 01 from the counter.
    let wire = c.poll_transmit().unwrap();
    assert_eq!(
        wire,
        [0x8a, 0x85, 0, 0, 0, 1, b'H', b'e', b'l', b'l' ^ 1, b'o']
    );
}

#[test]
fn protocol_violations_fail_with_1002() {
    let cases: Vec<Vec<u8>> = vec![
        frame(true, CONTINUE, b"x"),
        [frame(false, TEXT, b"a"), frame(true, TEXT, b"b")].concat(),
        [frame(false, BINARY, b"a"), frame(true, BINARY, b"b")].concat(),
        vec![0xC1, 0x00],
        vec![0x83, 0x00],
        vec![0x8C, 0x00],
        vec![0x09, 0x00],
        [vec![0x89, 0x7E, 0x00, 0x7E], vec![0; 126]].concat(),
        vec![0x81, 0x80, 1, 2, 3, 4],
        vec![0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1],
    ];
    for wire in cases {
        assert_fails(conn(), &wire, 1002, 1);
    }
}

#[test]
fn invalid_peer_close_codes_get_1002() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let mut c = conn();
        c.handle_input(Instant::now(), &close_frame(code, b""));
        let evs = events(&mut c);
        assert_eq!(error_code(&evs[1]), 1, "{code}");
        assert_eq!(evs[2], close(1002, "protocol error"), "{code}");
        assert_eq!(close_code_of(&sent(&mut c)[0]), 1002, "{code}");
        assert!(c.is_terminated(), "the peer already closed");
    }
    // A reason that is not UTF-8, a 1-byte payload.
    for wire in [
        close_frame(1000, &[0xce, 0xba, 0xe1, 0xbd]),
        frame(true, CLOSE, &[3]),
    ] {
        let mut c = conn();
        c.handle_input(Instant::now(), &wire);
        assert_eq!(close_code_of(&sent(&mut c)[0]), 1002);
        assert_eq!(events(&mut c)[2], close(1002, "protocol error"));
        assert!(c.is_terminated());
    }
}

#[test]
fn peer_close_is_echoed_and_reported() {
    for (code, reason) in [
        (1000u16, "bye"),
        (1001, ""),
        (1002, ""),
        (1003, ""),
        (1007, ""),
        (1008, ""),
        (1009, ""),
        (1010, ""),
        (1011, "oops"),
        (1012, ""),
        (1013, ""),
        (3000, ""),
        (3999, ""),
        (4000, ""),
        (4999, "κόσμε"),
    ] {
        let mut c = conn();
        let mut wire = close_frame(code, reason.as_bytes());
        wire.extend(frame(true, TEXT, b"after close"));
        let used = c.handle_input(Instant::now(), &wire);
        assert_eq!(
            used,
            wire.len() - 13,
            "bytes after the close are not consumed"
        );
        assert_eq!(events(&mut c), [SocketEvent::Open, close(code, reason)]);
        let reply = sent(&mut c);
        assert_eq!(reply.len(), 1);
        assert_eq!(&reply[0].payload[..], &code.to_be_bytes());
        assert!(c.is_terminated() && !c.wants_read());
    }
    // No code: reply 1000, report 1005.
    let mut c = conn();
    c.handle_input(Instant::now(), &frame(true, CLOSE, b""));
    assert_eq!(events(&mut c), [SocketEvent::Open, close(1005, "")]);
    assert_eq!(close_code_of(&sent(&mut c)[0]), 1000);
    // A 123-byte reason is fine.
    let mut c = conn();
    let reason = "r".repeat(123);
    c.handle_input(Instant::now(), &close_frame(1000, reason.as_bytes()));
    assert_eq!(events(&mut c)[1], close(1000, &reason));
}

#[test]
fn a_close_between_fragments_drops_the_partial_message() {
    let mut c = conn();
    let mut wire = frame(false, TEXT, b"frag1");
    wire.extend(close_frame(1000, b""));
    wire.extend(frame(true, CONTINUE, b"frag2"));
    c.handle_input(Instant::now(), &wire);
    assert_eq!(events(&mut c), [SocketEvent::Open, close(1000, "")]);
}

#[test]
fn invalid_utf8_fails_fast_with_1007() {
    // In one frame.
    assert_fails(conn(), &frame(true, TEXT, &[0xce, 0xba, 0xff]), 1007, 1);
    // In the middle fragment: the last fragment never needs to arrive.
    let mut wire = frame(false, TEXT, "κόσμε".as_bytes());
    wire.extend(frame(false, CONTINUE, &[0xed, 0xa0, 0x80])); // a surrogate
    assert_fails(conn(), &wire, 1007, 1);
    // Ending in the middle of a character.
    assert_fails(conn(), &frame(true, TEXT, &[b'a', 0xe2, 0x82]), 1007, 1);
    // In the middle of a frame: the frame's end never needs to arrive.
    let payload = [
        0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80, 0x65,
        0x64,
    ];
    let wire = frame(true, TEXT, &payload);
    let mut c = conn();
    let now = Instant::now();
    let before_bad = 2 + 11;
    c.handle_input(now, &wire[..before_bad]);
    assert_eq!(events(&mut c), [SocketEvent::Open]);
    c.handle_input(now, &wire[before_bad..before_bad + 2]);
    let evs = events(&mut c);
    assert_eq!(evs.len(), 1);
    assert_eq!(error_code(&evs[0]), 1);
    assert_eq!(close_code_of(&sent(&mut c)[0]), 1007);
}

#[test]
fn binary_is_not_checked_as_utf8() {
    let mut c = conn();
    c.handle_input(Instant::now(), &frame(true, BINARY, &[0xff, 0xfe]));
    assert_eq!(events(&mut c).len(), 2);
}

#[test]
fn messages_over_the_limit_fail_with_1009_and_error_12() {
    assert_fails(conn_with(10), &frame(true, TEXT, &[b'a'; 11]), 1009, 12);
    let mut wire = frame(false, BINARY, &[0; 6]);
    wire.extend(frame(true, PING, &[0; 100])); // control frames are not counted
    wire.extend(frame(true, CONTINUE, &[0; 5]));
    assert_fails(conn_with(10), &wire, 1009, 12);
    // Exactly the limit is fine.
    let mut c = conn_with(10);
    let mut wire = frame(false, BINARY, &[0; 6]);
    wire.extend(frame(true, CONTINUE, &[0; 4]));
    c.handle_input(Instant::now(), &wire);
    assert_eq!(events(&mut c).len(), 2);
}

#[test]
fn send_commands() {
    let mut c = conn();
    c.send_text("hi").unwrap();
    c.send_binary(&[1, 2]).unwrap();
    c.send(&SendOptions::text("t")).unwrap();
    c.send(&SendOptions::base64("AAEC")).unwrap();
    c.send_ping(b"p").unwrap();
    let err = c.send(&SendOptions::base64("not base64!")).unwrap_err();
    assert_eq!(err.code(Api::Socket), 11);
    assert_eq!(c.send_ping(&[0; 126]).unwrap_err().code(Api::Socket), 2);
    let frames = sent(&mut c);
    let got: Vec<(OpCode, &[u8])> = frames.iter().map(|f| (f.opcode, &f.payload[..])).collect();
    assert_eq!(
        got,
        [
            (TEXT, &b"hi"[..]),
            (BINARY, &[1, 2][..]),
            (TEXT, &b"t"[..]),
            (BINARY, &[0, 1, 2][..]),
            (PING, &b"p"[..]),
        ]
    );
    assert!(frames.iter().all(|f| f.fin));
}

#[test]
fn close_options_are_checked_first() {
    let now = Instant::now();
    let mut c = conn();
    for code in [0u16, 999, 1001, 1005, 1006, 2999, 5000] {
        assert_eq!(
            c.close(now, Some(code), None)
                .unwrap_err()
                .code(Api::Socket),
            2,
            "{code}"
        );
    }
    let long = "x".repeat(124);
    assert_eq!(
        c.close(now, None, Some(&long))
            .unwrap_err()
            .code(Api::Socket),
        2
    );
    assert!(c.is_open());
    c.close(now, None, Some(&"é".repeat(61))).unwrap();
    let f = sent(&mut c);
    assert_eq!(close_code_of(&f[0]), 1000);
    assert_eq!(f[0].payload.len(), 2 + 122);
}

#[test]
fn our_close_waits_for_the_peer() {
    let t0 = Instant::now();
    let mut c = conn();
    c.close(t0, Some(4000), Some("done")).unwrap();
    assert!(c.is_closing() && !c.is_open());
    assert_eq!(close_code_of(&sent(&mut c)[0]), 4000);
    // Not open any more: 10.
    assert_eq!(c.send_text("x").unwrap_err().code(Api::Socket), 10);
    assert_eq!(c.close(t0, None, None).unwrap_err().code(Api::Socket), 10);
    // Data and pings while closing are dropped, not answered.
    let mut wire = frame(true, TEXT, b"late");
    wire.extend(frame(true, PING, b"p"));
    c.handle_input(t0, &wire);
    assert!(c.poll_transmit().is_none());
    assert_eq!(events(&mut c), [SocketEvent::Open]);
    // The peer's close (any code) ends it; the event carries ours.
    c.handle_input(t0, &close_frame(1000, b""));
    assert_eq!(events(&mut c), [close(4000, "done")]);
    assert!(c.is_terminated());
    assert!(c.poll_transmit().is_none(), "no second close frame");
}

#[test]
fn close_timeout_and_eof_while_closing() {
    let t0 = Instant::now();
    let mut c = conn();
    c.close(t0, None, None).unwrap();
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    c.handle_timeout(t0 + Duration::from_secs(4));
    assert!(c.is_closing());
    c.handle_timeout(t0 + Duration::from_secs(5));
    assert!(c.is_terminated());
    assert_eq!(events(&mut c), [SocketEvent::Open, close(1000, "")]);
    assert_eq!(c.poll_timeout(), None);

    let mut c = conn();
    c.close(t0, Some(3001), None).unwrap();
    c.handle_eof();
    assert_eq!(events(&mut c), [SocketEvent::Open, close(3001, "")]);
}

#[test]
fn an_abnormal_end_is_error_then_1006() {
    let mut c = conn();
    c.handle_input(Instant::now(), &frame(false, TEXT, b"part"));
    c.handle_eof();
    let evs = events(&mut c);
    assert_eq!(evs.len(), 3);
    assert_eq!(error_code(&evs[1]), 1);
    assert_eq!(evs[2], close(1006, ""));
    assert!(c.is_terminated());
    // Nothing after the close.
    c.handle_eof();
    c.handle_input(Instant::now(), &frame(true, TEXT, b"x"));
    assert!(events(&mut c).is_empty());

    let mut c = conn();
    c.handle_transport_error(Error::new(ErrorKind::Tls, "bad record mac"));
    let evs = events(&mut c);
    assert_eq!(
        evs[1],
        SocketEvent::Error(Error::new(ErrorKind::Tls, "bad record mac"))
    );
    assert_eq!(evs[2], close(1006, ""));
}

#[test]
fn supersede_delivers_close_1000_at_once() {
    let t0 = Instant::now();
    let mut c = conn();
    c.handle_input(t0, &frame(true, TEXT, b"m"));
    c.supersede(t0);
    assert_eq!(
        events(&mut c),
        [SocketEvent::Open, text("m"), close(1000, "")]
    );
    assert_eq!(close_code_of(&sent(&mut c)[0]), 1000);
    assert!(c.is_closing(), "the handshake goes on in the background");
    c.handle_input(t0, &close_frame(1000, b""));
    assert!(c.is_terminated());
    assert!(events(&mut c).is_empty());

    // While a user close is under way: that close's code.
    let mut c = conn();
    c.close(t0, Some(4001), Some("x")).unwrap();
    c.supersede(t0);
    assert_eq!(events(&mut c), [SocketEvent::Open, close(4001, "x")]);
    c.handle_timeout(t0 + Duration::from_secs(60));
    assert!(c.is_terminated() && events(&mut c).is_empty());
}

// ----- property tests -----

/// One item of a server's stream.
#[derive(Debug, Clone)]
enum Item {
    /// A message cut into fragments at `cuts`, with a ping after fragment i
    /// when `pings[i]`.
    Message {
        binary: bool,
        data: Vec<u8>,
        cuts: Vec<usize>,
        pings: Vec<bool>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Raw(Vec<u8>),
    /// A lone data frame: may break the fragmentation rules or UTF-8.
    Lone(bool, u8, Vec<u8>),
}

fn item(garbage: bool) -> impl Strategy<Value = Item> {
    let message = (
        any::<bool>(),
        prop_oneof![
            any::<String>().prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..200),
        ],
        proptest::collection::vec(any::<usize>(), 0..4),
        proptest::collection::vec(any::<bool>(), 0..5),
    )
        .prop_map(|(binary, data, cuts, pings)| Item::Message {
            binary,
            data,
            cuts,
            pings,
        });
    let control = proptest::collection::vec(any::<u8>(), 0..126);
    let raw_weight = if garbage { 1 } else { 0 };
    prop_oneof![
        6 => message,
        2 => control.clone().prop_map(Item::Ping),
        1 => control.prop_map(Item::Pong),
        raw_weight => proptest::collection::vec(any::<u8>(), 1..20).prop_map(Item::Raw),
        raw_weight * 2 => (any::<bool>(), 0u8..3, proptest::collection::vec(any::<u8>(), 0..12))
            .prop_map(|(fin, op, payload)| Item::Lone(fin, op, payload)),
    ]
}

/// The wire bytes of `items` and, for well-formed streams, the events a
/// client must report (text that is not UTF-8 included: it must fail).
fn encode_items(items: &[Item], close: &Option<(u16, String)>) -> Vec<u8> {
    let mut wire = Vec::new();
    for it in items {
        match it {
            Item::Message {
                binary,
                data,
                cuts,
                pings,
            } => {
                let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
                points.push(0);
                points.push(data.len());
                points.sort_unstable();
                points.dedup();
                if points.len() == 1 {
                    points.push(0);
                }
                let pieces = points.len() - 1;
                for (i, pair) in points.windows(2).enumerate() {
                    let opcode = match (i, binary) {
                        (0, true) => BINARY,
                        (0, false) => TEXT,
                        _ => CONTINUE,
                    };
                    wire.extend(frame(i + 1 == pieces, opcode, &data[pair[0]..pair[1]]));
                    if pings.get(i).copied().unwrap_or(false) {
                        wire.extend(frame(true, PING, &[i as u8]));
                    }
                }
            }
            Item::Ping(p) => wire.extend(frame(true, PING, p)),
            Item::Pong(p) => wire.extend(frame(true, PONG, p)),
            Item::Raw(r) => wire.extend_from_slice(r),
            Item::Lone(fin, op, payload) => wire.extend(frame(*fin, OpCode::from(*op), payload)),
        }
    }
    if let Some((code, reason)) = close {
        wire.extend(close_frame(*code, reason.as_bytes()));
    }
    wire
}

/// Feeds `wire` in pieces cut at `cuts`; returns the events, the bytes
/// written, and whether it terminated.
fn run(wire: &[u8], cuts: &[usize]) -> (Vec<SocketEvent>, Vec<u8>, bool) {
    let now = Instant::now();
    let mut c = conn_with(150);
    let mut points: Vec<usize> = cuts.iter().map(|x| x % (wire.len() + 1)).collect();
    points.push(0);
    points.push(wire.len());
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    for pair in points.windows(2) {
        let piece = &wire[pair[0]..pair[1]];
        let used = c.handle_input(now, piece);
        assert!(used == piece.len() || c.is_terminated());
        out.extend(c.poll_transmit().unwrap_or_default());
        if c.is_terminated() {
            break;
        }
    }
    (events(&mut c), out, c.is_terminated())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// SPEC §2 split-anywhere: the same server stream, fed whole or cut
    /// anywhere, gives the same events and the same bytes written.
    #[test]
    fn split_anywhere_gives_the_same_events(
        items in proptest::collection::vec(item(true), 0..8),
        close in proptest::option::of((prop_oneof![Just(1000u16), Just(1001), Just(4000), Just(1005), Just(5000)], "[a-z]{0,10}")),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let wire = encode_items(&items, &close);
        let whole = run(&wire, &[]);
        let split = run(&wire, &cuts);
        let bytewise = run(&wire, &(0..wire.len()).collect::<Vec<_>>());
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(&whole, &bytewise);
    }

    /// Well-formed streams give exactly the messages sent (text as text,
    /// binary as binary), a pong per ping, and the close.
    #[test]
    fn well_formed_streams_give_their_messages(
        items in proptest::collection::vec(item(false), 0..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let close = Some((4000u16, "end".to_string()));
        let wire = encode_items(&items, &close);
        let (evs, out, terminated) = run(&wire, &cuts);
        let mut want = vec![SocketEvent::Open];
        let mut pings = 0;
        let mut failed = false;
        for it in &items {
            match it {
                Item::Message { binary, data, pings: p, cuts: c } => {
                    let fragments = {
                        let mut points: Vec<usize> = c.iter().map(|x| x % (data.len() + 1)).collect();
                        points.push(0);
                        points.push(data.len());
                        points.sort_unstable();
                        points.dedup();
                        points.len().max(2) - 1
                    };
                    if data.len() > 150 || (!binary && std::str::from_utf8(data).is_err()) {
                        failed = true;
                        break;
                    }
                    pings += p.iter().take(fragments).filter(|b| **b).count();
                    want.push(SocketEvent::Message {
                        data: if *binary {
                            MessageData::Binary(Bytes::from(data.clone()))
                        } else {
                            MessageData::Text(String::from_utf8(data.clone()).unwrap())
                        },
                    });
                }
                Item::Ping(_) => pings += 1,
                _ => {}
            }
        }
        if failed {
            // A bad message fails the connection: error, then (later) close.
            prop_assert!(matches!(evs.last(), Some(SocketEvent::Error(_))), "{:?}", evs);
            prop_assert!(!terminated);
        } else {
            want.push(close_event(4000, "end"));
            prop_assert_eq!(evs, want);
            prop_assert!(terminated);
            let mut dec = FrameDecoder::new(Role::Server, usize::MAX);
            let mut rest = &out[..];
            let mut frames = Vec::new();
            while !rest.is_empty() {
                let (n, f) = dec.decode(rest).unwrap();
                rest = &rest[n..];
                frames.extend(f);
            }
            prop_assert_eq!(frames.iter().filter(|f| f.opcode == PONG).count(), pings);
            prop_assert_eq!(frames.last().map(|f| f.opcode), Some(CLOSE));
        }
    }
}

fn close_event(code: u16, reason: &str) -> SocketEvent {
    close(code, reason)
}

/// One step of a random life.
#[derive(Debug, Clone)]
enum Op {
    Input(Vec<u8>),
    SendText(String),
    SendBuffer(String),
    Close(Option<u16>),
    Eof,
    Advance(u64),
    TransportError,
    Supersede,
}

fn op() -> impl Strategy<Value = Op> {
    let frame_bytes = (
        any::<bool>(),
        prop_oneof![
            Just(0u8),
            Just(1),
            Just(2),
            Just(8),
            Just(9),
            Just(10),
            Just(3)
        ],
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(fin, op, payload)| {
            let opcode = OpCode::from(op);
            let fin = fin || matches!(opcode, OpCode::Control(_));
            frame(fin, opcode, &payload)
        });
    prop_oneof![
        6 => frame_bytes.prop_map(Op::Input),
        1 => proptest::collection::vec(any::<u8>(), 1..10).prop_map(Op::Input),
        2 => any::<String>().prop_map(Op::SendText),
        1 => prop_oneof![Just("AAEC".to_string()), Just("%%".to_string())].prop_map(Op::SendBuffer),
        1 => proptest::option::of(prop_oneof![Just(1000u16), Just(4000), Just(1), Just(2000)]).prop_map(Op::Close),
        1 => Just(Op::Eof),
        1 => (0u64..8).prop_map(Op::Advance),
        1 => Just(Op::TransportError),
        1 => Just(Op::Supersede),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// SPEC §7 order for any sequence of inputs, commands, EOF and timeouts:
    /// open first, then messages, at most one error, exactly one close
    /// (once the connection has ended), nothing after the close; and no
    /// frame is written after a close frame.
    #[test]
    fn event_order_holds_for_any_life(ops in proptest::collection::vec(op(), 0..30)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut c = conn_with(64);
        let mut evs = Vec::new();
        let mut out = Vec::new();
        let mut ops = ops;
        // Every life ends: the peer drops the connection and time passes.
        ops.push(Op::Eof);
        ops.push(Op::Advance(10));
        for op in ops {
            match op {
                Op::Input(bytes) => {
                    let used = c.handle_input(now, &bytes);
                    prop_assert!(used == bytes.len() || c.is_terminated());
                }
                Op::SendText(s) => {
                    let r = c.send_text(&s);
                    prop_assert_eq!(r.is_ok(), c.is_open());
                }
                Op::SendBuffer(s) => {
                    if let Err(e) = c.send(&SendOptions::base64(s)) {
                        prop_assert!([10, 11].contains(&e.code(Api::Socket)));
                    }
                }
                Op::Close(code) => {
                    if let Err(e) = c.close(now, code, None) {
                        prop_assert!([2, 10].contains(&e.code(Api::Socket)));
                    }
                }
                Op::Eof => c.handle_eof(),
                Op::Advance(s) => {
                    now += Duration::from_secs(s);
                    if let Some(deadline) = c.poll_timeout() {
                        prop_assert!(deadline > t0);
                    }
                    c.handle_timeout(now);
                }
                Op::TransportError => c.handle_transport_error(Error::new(ErrorKind::Network, "reset")),
                Op::Supersede => c.supersede(now),
            }
            out.extend(c.poll_transmit().unwrap_or_default());
            evs.extend(std::iter::from_fn(|| c.poll_event()));
        }
        prop_assert!(c.is_terminated());
        prop_assert_eq!(evs.first(), Some(&SocketEvent::Open));
        prop_assert!(matches!(evs.last(), Some(SocketEvent::Close { .. })), "{:?}", evs);
        let closes = evs.iter().filter(|e| matches!(e, SocketEvent::Close { .. })).count();
        let errors: Vec<usize> = evs.iter().enumerate().filter(|(_, e)| matches!(e, SocketEvent::Error(_))).map(|(i, _)| i).collect();
        prop_assert_eq!(closes, 1);
        prop_assert!(errors.len() <= 1);
        if let Some(&i) = errors.first() {
            prop_assert_eq!(i, evs.len() - 2, "the error comes right before the close");
        }
        prop_assert_eq!(evs.iter().filter(|e| **e == SocketEvent::Open).count(), 1);
        // The written frames are masked, well formed, and end at the first close.
        let mut dec = FrameDecoder::new(Role::Server, usize::MAX);
        let mut rest = &out[..];
        let mut frames = Vec::new();
        while !rest.is_empty() {
            let (n, f) = dec.decode(rest).unwrap();
            rest = &rest[n..];
            frames.extend(f);
        }
        if let Some(i) = frames.iter().position(|f| f.opcode == CLOSE) {
            prop_assert_eq!(i, frames.len() - 1);
        }
    }
}
