//! TLS 1.3 application-traffic records, sealed where they will be sent
//! from and opened where they were read into (RFC 8446 §5.2), with
//! rustls's key schedule.
//!
//! Once the handshake is done, [`crate::tls_session::TlsSession`] hands
//! rustls's traffic secrets to a [`RecordLayer`] (rustls's `kernel` API,
//! made for kTLS) and keeps rustls for the two things only it can do: new
//! traffic secrets on a key update, and storing the session tickets the
//! server sends. rustls 0.23 allocates a buffer for every record it
//! encrypts and copies every record it decrypts into a new one; here a
//! warm keep-alive request makes no allocation, and a download one copy
//! fewer. The AEAD is *ring*'s, the one rustls itself runs here.
//!
//! What is checked, as rustls checks it: the record header (type, version,
//! a body of at most [`MAX_CIPHERTEXT`] bytes), the AEAD tag, the inner
//! content type and its padding (together at most [`MAX_FRAGMENT`] + 1
//! bytes), at most 32 records with no content in a row, handshake
//! messages (only `NewSessionTicket` and `KeyUpdate` come after the
//! handshake; not interleaved with other records; a key update ends its
//! record), alerts (`close_notify` ends the stream, `user_canceled` is
//! ignored a few times, anything else is fatal), and a bound on key
//! updates between two records of data.
//!
//! The layer opens no socket and keeps no buffer of its own besides a
//! handshake message that spans records.

use std::ops::Range;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use rustls::client::ClientConnectionData;
use rustls::kernel::KernelConnection;
use rustls::{
    AlertDescription, ConnectionTrafficSecrets, ContentType, Error, ExtractedSecrets,
    HandshakeType, InvalidMessage, PeerMisbehaved,
};

/// The most plaintext one record carries (RFC 8446 §5.1: 2^14 bytes).
pub const MAX_FRAGMENT: usize = 16_384;

/// The longest record body taken from the peer: 2^14 + 2048 bytes,
/// rustls's own bound (RFC 8446 §5.2 allows 2^14 + 256 of ciphertext;
/// rustls is as lenient as TLS 1.2 was, and so is this layer).
pub const MAX_CIPHERTEXT: usize = MAX_FRAGMENT + 2048;

/// The longest handshake message taken after the handshake (a session
/// ticket, a key update): 64 KiB, rustls's bound for handshake messages.
pub const MAX_HANDSHAKE_MESSAGE: usize = 0xffff;

/// The record header: type, legacy version, body length.
pub const HEADER: usize = 5;

/// The AEAD tag of every suite TLS 1.3 defines.
const TAG: usize = 16;

/// Key updates taken between two records of data (BoringSSL's and
/// rustls's bound).
const KEY_UPDATES_BETWEEN_DATA: u8 = 32;

/// `user_canceled` warnings ignored before the session fails (BoringSSL's
/// and rustls's bound).
const WARNING_ALERTS: u8 = 4;

/// Records with no content in a row before the session fails (rustls's
/// bound).
const EMPTY_RECORDS_IN_A_ROW: u8 = 32;

/// The last sequence number a key may seal or open (rustls's hard limit:
/// a connection then fails rather than wrap around).
const SEQ_HARD_LIMIT: u64 = 0xffff_ffff_ffff_fffe;

/// A failure and the alert to send the peer for it (none when the peer's
/// own alert ended the session).
#[derive(Debug, Clone)]
pub struct RecordError {
    /// rustls's error value for the failure, as rustls would report it.
    pub error: Error,
    /// The fatal alert the peer is owed.
    pub alert: Option<AlertDescription>,
}

impl RecordError {
    fn new(error: impl Into<Error>, alert: AlertDescription) -> Self {
        RecordError {
            error: error.into(),
            alert: Some(alert),
        }
    }
}

impl From<Error> for RecordError {
    /// A failure of rustls's key schedule or ticket store: an internal
    /// error to the peer unless the message itself was malformed.
    fn from(error: Error) -> Self {
        let alert = match &error {
            Error::InvalidMessage(_) => AlertDescription::DecodeError,
            _ => AlertDescription::InternalError,
        };
        RecordError {
            error,
            alert: Some(alert),
        }
    }
}

/// What one whole record held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Application data, at this range of the buffer given to
    /// [`RecordLayer::open`] (possibly empty).
    Data(Range<usize>),
    /// A session ticket, a key update or an ignored warning: nothing for
    /// the reader.
    Nothing,
    /// The peer's `close_notify`: the end of its data.
    Closed,
}

/// One direction's key, IV and next sequence number.
struct Direction {
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
    seq: u64,
}

impl Direction {
    fn new((seq, secrets): (u64, ConnectionTrafficSecrets)) -> Result<Self, Error> {
        let (alg, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv)
            }
            _ => {
                return Err(Error::General(
                    "no record layer for the negotiated cipher suite".into(),
                ))
            }
        };
        let key = UnboundKey::new(alg, key.as_ref())
            .map_err(|_| Error::General("a traffic key of the wrong length".into()))?;
        let iv: [u8; NONCE_LEN] = iv
            .as_ref()
            .try_into()
            .map_err(|_| Error::General("a traffic IV of the wrong length".into()))?;
        Ok(Direction {
            key: LessSafeKey::new(key),
            iv,
            seq,
        })
    }

    /// The nonce of the next record (the IV xor the sequence number, RFC
    /// 8446 §5.3), counting it.
    fn next_nonce(&mut self) -> Option<Nonce> {
        if self.seq > SEQ_HARD_LIMIT {
            return None;
        }
        let mut nonce = self.iv;
        for (n, s) in nonce[NONCE_LEN - 8..]
            .iter_mut()
            .zip(self.seq.to_be_bytes())
        {
            *n ^= s;
        }
        self.seq += 1;
        Some(Nonce::assume_unique_for_key(nonce))
    }
}

/// Makes room for `more` bytes after `end` in `buf` (its length is its
/// usable size; new room is zeroed once, then reused).
pub(crate) fn reserve(buf: &mut Vec<u8>, end: usize, more: usize) {
    let want = end.saturating_add(more);
    if buf.len() < want {
        buf.resize(want, 0);
    }
}

/// A TLS 1.3 client's record layer after the handshake.
pub struct RecordLayer {
    keys: KernelConnection<ClientConnectionData>,
    tx: Direction,
    rx: Direction,
    /// Records sealed under one key before it is updated: the suite's
    /// confidentiality limit.
    tx_limit: u64,
    /// The most plaintext per sealed record.
    max_fragment: usize,
    /// A handshake message begun in an earlier record.
    handshake: Vec<u8>,
    key_updates_left: u8,
    warnings_left: u8,
    empty_in_a_row: u8,
}

impl std::fmt::Debug for RecordLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordLayer")
            .field("tx_seq", &self.tx.seq)
            .field("rx_seq", &self.rx.seq)
            .field("partial_handshake", &self.handshake.len())
            .finish_non_exhaustive()
    }
}

impl RecordLayer {
    /// The layer for a session whose handshake rustls finished, from what
    /// `dangerous_into_kernel_connection` gave. `max_fragment` bounds the
    /// plaintext per record this side seals (at most [`MAX_FRAGMENT`]).
    pub fn new(
        secrets: ExtractedSecrets,
        keys: KernelConnection<ClientConnectionData>,
        max_fragment: usize,
    ) -> Result<Self, Error> {
        let tx_limit = keys
            .negotiated_cipher_suite()
            .tls13()
            .map_or(0, |s| s.common.confidentiality_limit)
            .min(SEQ_HARD_LIMIT);
        Ok(RecordLayer {
            tx: Direction::new(secrets.tx)?,
            rx: Direction::new(secrets.rx)?,
            keys,
            tx_limit,
            max_fragment: max_fragment.clamp(1, MAX_FRAGMENT),
            handshake: Vec::new(),
            key_updates_left: KEY_UPDATES_BETWEEN_DATA,
            warnings_left: WARNING_ALERTS,
            empty_in_a_row: 0,
        })
    }

    /// Sets how many records one key seals before it is updated (tests
    /// reach the suite's limit with it).
    #[cfg(test)]
    pub(crate) fn set_key_limit(&mut self, records: u64) {
        self.tx_limit = records;
    }

    /// Seals `data` as application-data records appended at
    /// `out[*end..]` (growing `out`), updating the key first when it has
    /// sealed as many records as its suite allows.
    pub fn seal(&mut self, data: &[u8], out: &mut Vec<u8>, end: &mut usize) -> Result<(), Error> {
        for piece in data.chunks(self.max_fragment) {
            if self.tx.seq >= self.tx_limit {
                self.update_tx(out, end)?;
            }
            self.seal_record(ContentType::ApplicationData, piece, out, end)?;
        }
        Ok(())
    }

    /// Seals a fatal alert for the peer (best effort: a failure is
    /// dropped, as the session is ending anyway).
    pub fn seal_alert(&mut self, alert: AlertDescription, out: &mut Vec<u8>, end: &mut usize) {
        let _ = self.seal_record(ContentType::Alert, &[2, u8::from(alert)], out, end);
    }

    /// Sends `KeyUpdate(update_not_requested)` under the current key, then
    /// seals with the next one (RFC 8446 §4.6.3). The next key is derived
    /// first: if that fails, nothing was sent and the current key still
    /// seals the alert.
    fn update_tx(&mut self, out: &mut Vec<u8>, end: &mut usize) -> Result<(), Error> {
        let next = Direction::new(self.keys.update_tx_secret()?)?;
        let key_update = [u8::from(HandshakeType::KeyUpdate), 0, 0, 1, 0];
        self.seal_record(ContentType::Handshake, &key_update, out, end)?;
        self.tx = next;
        Ok(())
    }

    /// One record: header, `body`, its inner type, the tag.
    fn seal_record(
        &mut self,
        typ: ContentType,
        body: &[u8],
        out: &mut Vec<u8>,
        end: &mut usize,
    ) -> Result<(), Error> {
        let len = body.len() + 1 + TAG;
        let wire_len = u16::try_from(len).map_err(|_| Error::EncryptError)?;
        let nonce = self.tx.next_nonce().ok_or(Error::EncryptError)?;
        reserve(out, *end, HEADER + len);
        let record = &mut out[*end..*end + HEADER + len];
        let (header, rest) = record.split_at_mut(HEADER);
        let [hi, lo] = wire_len.to_be_bytes();
        let header_bytes = [u8::from(ContentType::ApplicationData), 3, 3, hi, lo];
        header.copy_from_slice(&header_bytes);
        let (inner, tag) = rest.split_at_mut(body.len() + 1);
        inner[..body.len()].copy_from_slice(body);
        inner[body.len()] = u8::from(typ);
        let sealed = self
            .tx
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(header_bytes), inner)
            .map_err(|_| Error::EncryptError)?;
        tag.copy_from_slice(sealed.as_ref());
        *end += HEADER + len;
        Ok(())
    }

    /// Opens the record at the start of `buf` in place, if it is whole:
    /// the bytes it took and what it held. `Ok(None)` asks for more bytes
    /// (a bad header fails at once, without waiting for its body). A key
    /// update that asks for one back seals it at `out[*end..]`.
    pub fn open(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<u8>,
        end: &mut usize,
    ) -> Result<Option<(usize, Opened)>, RecordError> {
        let Some(&[typ, major, minor, hi, lo]) = buf.get(..HEADER) else {
            return Ok(None);
        };
        check_outer_type(typ)?;
        if major != 3 {
            return Err(RecordError::new(
                InvalidMessage::UnknownProtocolVersion,
                AlertDescription::DecodeError,
            ));
        }
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len > MAX_CIPHERTEXT {
            return Err(RecordError::new(
                Error::PeerSentOversizedRecord,
                AlertDescription::RecordOverflow,
            ));
        }
        let Some(record) = buf.get_mut(..HEADER + len) else {
            return Ok(None);
        };
        let used = record.len();
        let body = &mut record[HEADER..];
        let bad_mac = || RecordError::new(Error::DecryptError, AlertDescription::BadRecordMac);
        if body.len() < TAG {
            return Err(bad_mac());
        }
        let nonce = self.rx.next_nonce().ok_or_else(bad_mac)?;
        let aad = Aad::from([typ, major, minor, hi, lo]);
        let plain = self
            .rx
            .key
            .open_in_place(nonce, aad, body)
            .map_err(|_| bad_mac())?;
        // RFC 8446 §5.4: the inner plaintext, padding included, is at most
        // 2^14 + 1 bytes.
        if plain.len() > MAX_FRAGMENT + 1 {
            return Err(RecordError::new(
                Error::PeerSentOversizedRecord,
                AlertDescription::RecordOverflow,
            ));
        }
        let Some(type_at) = plain.iter().rposition(|&b| b != 0) else {
            return Err(RecordError::new(
                PeerMisbehaved::IllegalTlsInnerPlaintext,
                AlertDescription::UnexpectedMessage,
            ));
        };
        if type_at == 0 {
            if self.empty_in_a_row == EMPTY_RECORDS_IN_A_ROW {
                return Err(RecordError::new(
                    PeerMisbehaved::TooManyEmptyFragments,
                    AlertDescription::UnexpectedMessage,
                ));
            }
            self.empty_in_a_row += 1;
        } else {
            self.empty_in_a_row = 0;
        }
        let inner = ContentType::from(plain[type_at]);
        let content = &plain[..type_at];
        if inner != ContentType::Handshake && !self.handshake.is_empty() {
            return Err(RecordError::new(
                PeerMisbehaved::MessageInterleavedWithHandshakeMessage,
                AlertDescription::UnexpectedMessage,
            ));
        }
        let opened = match inner {
            ContentType::ApplicationData if type_at == 0 => Opened::Nothing,
            ContentType::ApplicationData => {
                self.key_updates_left = KEY_UPDATES_BETWEEN_DATA;
                Opened::Data(HEADER..HEADER + type_at)
            }
            ContentType::Handshake => {
                if content.is_empty() {
                    return Err(RecordError::new(
                        InvalidMessage::InvalidEmptyPayload,
                        AlertDescription::UnexpectedMessage,
                    ));
                }
                self.handshake.extend_from_slice(content);
                self.take_handshake(out, end)?;
                Opened::Nothing
            }
            ContentType::Alert => self.alert(content)?,
            other => {
                return Err(RecordError::new(
                    Error::InappropriateMessage {
                        expect_types: vec![ContentType::ApplicationData],
                        got_type: other,
                    },
                    AlertDescription::UnexpectedMessage,
                ))
            }
        };
        Ok(Some((used, opened)))
    }

    /// An alert the peer sent (RFC 8446 §6).
    fn alert(&mut self, content: &[u8]) -> Result<Opened, RecordError> {
        let &[level, description] = content else {
            return Err(RecordError::new(
                InvalidMessage::MessageTooShort,
                AlertDescription::DecodeError,
            ));
        };
        let description = AlertDescription::from(description);
        let received = Error::AlertReceived(description);
        if level != 1 && level != 2 {
            return Err(RecordError::new(
                received,
                AlertDescription::IllegalParameter,
            ));
        }
        if description == AlertDescription::CloseNotify {
            return Ok(Opened::Closed);
        }
        match level {
            // A warning: only user_canceled is one in TLS 1.3.
            1 if description == AlertDescription::UserCanceled => {
                if self.warnings_left == 0 {
                    return Err(RecordError::new(
                        PeerMisbehaved::TooManyWarningAlertsReceived,
                        AlertDescription::UnexpectedMessage,
                    ));
                }
                self.warnings_left -= 1;
                Ok(Opened::Nothing)
            }
            1 => Err(RecordError::new(received, AlertDescription::DecodeError)),
            _ => Err(RecordError {
                error: received,
                alert: None,
            }),
        }
    }

    /// Handles the whole handshake messages gathered so far, keeping a
    /// partial one for the next record.
    fn take_handshake(&mut self, out: &mut Vec<u8>, end: &mut usize) -> Result<(), RecordError> {
        let mut at = 0;
        let result = loop {
            let Some(&[typ, a, b, c]) = self.handshake.get(at..at + 4) else {
                break Ok(());
            };
            let len = u32::from_be_bytes([0, a, b, c]) as usize;
            if len > MAX_HANDSHAKE_MESSAGE {
                break Err(RecordError::new(
                    InvalidMessage::HandshakePayloadTooLarge,
                    AlertDescription::DecodeError,
                ));
            }
            let Some(body) = self.handshake.get(at + 4..at + 4 + len) else {
                break Ok(());
            };
            let last = at + 4 + len == self.handshake.len();
            let step = match HandshakeType::from(typ) {
                HandshakeType::NewSessionTicket => self
                    .keys
                    .handle_new_session_ticket(body)
                    .map_err(RecordError::from),
                HandshakeType::KeyUpdate => {
                    let request = match body {
                        &[b] => Some(b),
                        _ => None,
                    };
                    self.key_update(request, last, out, end)
                }
                other => Err(RecordError::new(
                    Error::InappropriateHandshakeMessage {
                        expect_types: vec![
                            HandshakeType::NewSessionTicket,
                            HandshakeType::KeyUpdate,
                        ],
                        got_type: other,
                    },
                    AlertDescription::UnexpectedMessage,
                )),
            };
            if let Err(e) = step {
                break Err(e);
            }
            at += 4 + len;
        };
        // What is kept is a partial header or the start of a message whose
        // announced length passed the check above: at most
        // MAX_HANDSHAKE_MESSAGE + 3 bytes.
        self.handshake.drain(..at.min(self.handshake.len()));
        result
    }

    /// A `KeyUpdate` whose body is `body` (RFC 8446 §4.6.3): it must end
    /// its record; the peer's key changes, and ours too when it asks.
    fn key_update(
        &mut self,
        body: Option<u8>,
        ends_record: bool,
        out: &mut Vec<u8>,
        end: &mut usize,
    ) -> Result<(), RecordError> {
        if !ends_record {
            return Err(RecordError::new(
                PeerMisbehaved::KeyEpochWithPendingFragment,
                AlertDescription::UnexpectedMessage,
            ));
        }
        if self.key_updates_left == 0 {
            return Err(RecordError::new(
                PeerMisbehaved::TooManyKeyUpdateRequests,
                AlertDescription::UnexpectedMessage,
            ));
        }
        self.key_updates_left -= 1;
        match body {
            Some(0) => {}
            Some(1) => self.update_tx(out, end)?,
            Some(_) => {
                return Err(RecordError::new(
                    InvalidMessage::InvalidKeyUpdate,
                    AlertDescription::IllegalParameter,
                ))
            }
            None => {
                return Err(RecordError::new(
                    InvalidMessage::TrailingData("KeyUpdate"),
                    AlertDescription::DecodeError,
                ))
            }
        }
        self.rx = Direction::new(self.keys.update_rx_secret()?)?;
        Ok(())
    }
}

/// The outer type of a record after the handshake: application data only
/// (RFC 8446 §5.2); any other is refused from its header.
fn check_outer_type(typ: u8) -> Result<(), RecordError> {
    match ContentType::from(typ) {
        ContentType::ApplicationData => Ok(()),
        ContentType::Unknown(_) => Err(RecordError::new(
            InvalidMessage::InvalidContentType,
            AlertDescription::UnexpectedMessage,
        )),
        other => Err(RecordError::new(
            Error::InappropriateMessage {
                expect_types: vec![ContentType::ApplicationData],
                got_type: other,
            },
            AlertDescription::UnexpectedMessage,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls_session::tests::{
        config, deliver_to_client, deliver_to_server, drain, pair_with_server, send_all,
    };
    use crate::tls_session::{Plaintext, TlsSession};
    use mpnet_testkit::TestCa;
    use rustls::HandshakeKind;
    use std::io::Write as _;
    use std::sync::Arc;

    /// The server's settings, allowing its secrets to be taken.
    fn server_config(ca: &TestCa) -> Arc<rustls::ServerConfig> {
        let mut config = (*ca.leaf().server_config(true)).clone();
        config.enable_secret_extraction = true;
        Arc::new(config)
    }

    /// A client on mpnet's records, its handshake done and the server's
    /// tickets taken in; and the server's two directions, to make records
    /// as the server (`to_client`) and open the client's (`from_client`).
    fn crafted() -> (TlsSession, Direction, Direction) {
        let ca = TestCa::new();
        let (mut client, mut server) = pair_with_server(config(&ca, true), server_config(&ca));
        deliver_to_server(&mut client, &mut server);
        deliver_to_client(&mut server, &mut client, usize::MAX);
        assert_eq!(drain(&mut client, 64).1, Plaintext::NeedRead);
        assert!(client.uses_mpnet_records());
        #[allow(deprecated)]
        let secrets = server.dangerous_extract_secrets().expect("secrets");
        let to_client = Direction::new(secrets.tx).expect("tx");
        let from_client = Direction::new(secrets.rx).expect("rx");
        (client, to_client, from_client)
    }

    /// One record as a peer would seal it: `content`, its inner type,
    /// `padding` zeros.
    fn record(peer: &mut Direction, inner: ContentType, content: &[u8], padding: usize) -> Vec<u8> {
        let mut plain = content.to_vec();
        plain.push(u8::from(inner));
        plain.resize(plain.len() + padding, 0);
        let len = u16::try_from(plain.len() + TAG).expect("short");
        let [hi, lo] = len.to_be_bytes();
        let header = [0x17, 3, 3, hi, lo];
        let nonce = peer.next_nonce().expect("nonce");
        let tag = peer
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(header), &mut plain)
            .expect("seal");
        [&header[..], &plain, tag.as_ref()].concat()
    }

    /// Opens the client's next record in `wire` with `peer`: its inner type
    /// and content, and the rest of `wire`.
    fn open_one<'a>(peer: &mut Direction, wire: &'a mut [u8]) -> (u8, Vec<u8>, &'a mut [u8]) {
        let len = usize::from(u16::from_be_bytes([wire[3], wire[4]]));
        let (record, rest) = wire.split_at_mut(HEADER + len);
        let header: [u8; 5] = record[..HEADER].try_into().expect("header");
        let nonce = peer.next_nonce().expect("nonce");
        let plain = peer
            .key
            .open_in_place(nonce, Aad::from(header), &mut record[HEADER..])
            .expect("the client's record opens");
        let at = plain.iter().rposition(|&b| b != 0).expect("type");
        (plain[at], plain[..at].to_vec(), rest)
    }

    /// Gives `wire` to the client and reads until it stops: the plaintext
    /// and how it stopped.
    fn feed(client: &mut TlsSession, wire: &[u8]) -> (Vec<u8>, Result<Plaintext, Error>) {
        let mut read = wire.to_vec();
        if let Err(e) = client.received_in(&mut read, wire.len()) {
            return (Vec::new(), Err(e));
        }
        let mut got = Vec::new();
        let mut dst = [0u8; 4096];
        loop {
            match client.read_plaintext(&mut dst) {
                Ok(Plaintext::Data(n)) => got.extend_from_slice(&dst[..n]),
                other => return (got, other),
            }
        }
    }

    /// A session ticket (RFC 8446 §4.6.1) as a handshake message.
    fn ticket() -> Vec<u8> {
        let body = [
            &3600u32.to_be_bytes()[..], // lifetime
            &7u32.to_be_bytes(),        // age_add
            &[1, 9],                    // nonce
            &[0, 4],
            b"tick", // ticket
            &[0, 0], // extensions
        ]
        .concat();
        let len = u32::try_from(body.len()).expect("short").to_be_bytes();
        [
            &[u8::from(HandshakeType::NewSessionTicket)][..],
            &len[1..],
            &body,
        ]
        .concat()
    }

    fn key_update(request: u8) -> Vec<u8> {
        vec![u8::from(HandshakeType::KeyUpdate), 0, 0, 1, request]
    }

    #[test]
    fn data_padding_and_a_ticket_split_over_records_are_read() {
        let (mut client, mut peer, _) = crafted();
        let t = ticket();
        let wire = [
            record(&mut peer, ContentType::ApplicationData, b"pad", 40),
            record(&mut peer, ContentType::Handshake, &t[..3], 0),
            record(&mut peer, ContentType::Handshake, &t[3..], 0),
            record(&mut peer, ContentType::ApplicationData, b"", 0),
            record(&mut peer, ContentType::ApplicationData, b"after", 0),
        ]
        .concat();
        let (got, end) = feed(&mut client, &wire);
        assert_eq!(got, b"padafter");
        assert_eq!(end, Ok(Plaintext::NeedRead));
    }

    #[test]
    fn each_rule_of_rfc_8446_is_kept() {
        type Make = fn(&mut Direction) -> Vec<u8>;
        let cases: [(&str, Make, &str); 13] = [
            (
                "a key update that does not end its record",
                |p| {
                    let body = [key_update(0), ticket()].concat();
                    record(p, ContentType::Handshake, &body, 0)
                },
                "KeyEpochWithPendingFragment",
            ),
            (
                "data inside a split handshake message",
                |p| {
                    let t = ticket();
                    [
                        record(p, ContentType::Handshake, &t[..5], 0),
                        record(p, ContentType::ApplicationData, b"x", 0),
                    ]
                    .concat()
                },
                "MessageInterleavedWithHandshakeMessage",
            ),
            (
                "an inner plaintext of zeros",
                |p| {
                    // Three zeros sealed: no content type at all.
                    let header = [0x17, 3, 3, 0, (3 + TAG) as u8];
                    let mut plain = vec![0u8; 3];
                    let nonce = p.next_nonce().expect("nonce");
                    let tag = p
                        .key
                        .seal_in_place_separate_tag(nonce, Aad::from(header), &mut plain)
                        .expect("seal");
                    [&header[..], &plain, tag.as_ref()].concat()
                },
                "IllegalTlsInnerPlaintext",
            ),
            (
                "an empty handshake record",
                |p| record(p, ContentType::Handshake, b"", 0),
                "InvalidEmptyPayload",
            ),
            (
                "a handshake message other than a ticket or key update",
                |p| record(p, ContentType::Handshake, &[13, 0, 0, 0], 0),
                "InappropriateHandshakeMessage",
            ),
            (
                "a key update asking for something unknown",
                |p| record(p, ContentType::Handshake, &key_update(2), 0),
                "InvalidKeyUpdate",
            ),
            (
                "a fifth user_canceled warning",
                |p| {
                    (0..5)
                        .flat_map(|_| record(p, ContentType::Alert, &[1, 90], 0))
                        .collect()
                },
                "TooManyWarningAlertsReceived",
            ),
            (
                "a warning other than user_canceled",
                |p| record(p, ContentType::Alert, &[1, 42], 0),
                "AlertReceived(BadCertificate)",
            ),
            (
                "a fatal alert",
                |p| record(p, ContentType::Alert, &[2, 80], 0),
                "AlertReceived(InternalError)",
            ),
            (
                "an alert of three bytes",
                |p| record(p, ContentType::Alert, &[2, 80, 0], 0),
                "MessageTooShort",
            ),
            (
                "a record whose plaintext is over 16 KiB",
                |p| record(p, ContentType::ApplicationData, &[7u8; MAX_FRAGMENT + 1], 0),
                "PeerSentOversizedRecord",
            ),
            (
                "an unprotected change_cipher_spec",
                |_| vec![20, 3, 3, 0, 1, 1],
                "InappropriateMessage",
            ),
            (
                "a tag that does not match",
                |p| {
                    let mut r = record(p, ContentType::ApplicationData, b"data", 0);
                    let last = r.len() - 1;
                    r[last] ^= 1;
                    r
                },
                "DecryptError",
            ),
        ];
        for (what, make, error) in cases {
            let (mut client, mut peer, _) = crafted();
            let wire = make(&mut peer);
            let (_, end) = feed(&mut client, &wire);
            let e = end.expect_err(what);
            assert!(format!("{e:?}").contains(error), "{what}: {e:?}");
            let fatal_from_peer = what == "a fatal alert";
            assert_eq!(
                client.transmit().is_empty(),
                fatal_from_peer,
                "{what}: an alert is owed unless the peer's own ended it"
            );
            assert!(client.encrypt(b"more").is_err(), "{what}: dead after");
        }
    }

    #[test]
    fn bad_headers_fail_before_their_body_arrives() {
        let headers: [(&[u8], &str); 3] = [
            (&[22, 3, 3, 0, 40], "InappropriateMessage"),
            (&[23, 2, 3, 0, 40], "UnknownProtocolVersion"),
            (&[23, 3, 3, 0x48, 0x01], "PeerSentOversizedRecord"),
        ];
        for (header, error) in headers {
            let (mut client, _, _) = crafted();
            let (_, end) = feed(&mut client, header);
            let e = end.expect_err(error);
            assert!(format!("{e:?}").contains(error), "{e:?}");
        }
        // A whole header of the largest allowed record just waits.
        let (mut client, _, _) = crafted();
        let (_, end) = feed(&mut client, &[23, 3, 3, 0x48, 0x00]);
        assert_eq!(end, Ok(Plaintext::NeedRead));
    }

    #[test]
    fn close_notify_ends_the_data_and_user_canceled_is_ignored() {
        let (mut client, mut peer, _) = crafted();
        let wire = [
            record(&mut peer, ContentType::Alert, &[1, 90], 0),
            record(&mut peer, ContentType::ApplicationData, b"last", 0),
            record(&mut peer, ContentType::Alert, &[1, 0], 0),
        ]
        .concat();
        let (got, end) = feed(&mut client, &wire);
        assert_eq!(got, b"last");
        assert_eq!(end, Ok(Plaintext::Closed));
    }

    #[test]
    fn a_key_update_that_asks_for_one_is_answered_under_the_old_key() {
        let (mut client, mut peer, mut from_client) = crafted();
        let wire = record(&mut peer, ContentType::Handshake, &key_update(1), 0);
        let (_, end) = feed(&mut client, &wire);
        assert_eq!(end, Ok(Plaintext::NeedRead));
        client.encrypt(b"new key").expect("encrypt");
        let mut out = client.transmit().to_vec();
        let (typ, content, rest) = open_one(&mut from_client, &mut out);
        assert_eq!(typ, u8::from(ContentType::Handshake));
        assert_eq!(content, key_update(0), "update_not_requested, old key");
        // The data after it is under the next key: the old one fails.
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        let header: [u8; 5] = rest[..HEADER].try_into().expect("header");
        let nonce = from_client.next_nonce().expect("nonce");
        assert!(from_client
            .key
            .open_in_place(nonce, Aad::from(header), &mut rest[HEADER..HEADER + len])
            .is_err());
    }

    #[test]
    fn the_key_is_updated_at_its_limit_and_the_server_reads_on() {
        let ca = TestCa::new();
        let (mut client, mut server) =
            pair_with_server(config(&ca, true), ca.leaf().server_config(true));
        deliver_to_server(&mut client, &mut server);
        client
            .record_layer()
            .expect("mpnet records")
            .set_key_limit(3);
        // 10 records under 4 keys: the server follows each update.
        let data: Vec<u8> = (0..10 * MAX_FRAGMENT).map(|i| (i % 253) as u8).collect();
        let (_, got) = send_all(&mut client, &mut server, &data);
        assert_eq!(got, data);
        let layer = client.record_layer().expect("records");
        assert!(layer.tx.seq <= 3, "a fresh key: {layer:?}");
    }

    #[test]
    fn tickets_taken_by_mpnet_records_resume_the_next_session() {
        let ca = TestCa::new();
        let client_config = config(&ca, true);
        let server_config = ca.leaf().server_config(true);
        let (mut client, mut server) =
            pair_with_server(client_config.clone(), server_config.clone());
        deliver_to_server(&mut client, &mut server);
        assert_eq!(server.handshake_kind(), Some(HandshakeKind::Full));
        assert!(client.uses_mpnet_records());
        deliver_to_client(&mut server, &mut client, usize::MAX);
        assert_eq!(drain(&mut client, 64).1, Plaintext::NeedRead);
        let (mut again, mut server) = pair_with_server(client_config, server_config);
        deliver_to_server(&mut again, &mut server);
        assert_eq!(server.handshake_kind(), Some(HandshakeKind::Resumed));
    }

    #[test]
    fn configs_that_keep_secrets_in_stay_with_rustls() {
        // (TLS 1.2: `tls_session`'s `tls_1_2_works_too`.)
        let ca = TestCa::new();
        let (client, _) = pair_with_server(config(&ca, false), ca.leaf().server_config(true));
        assert!(!client.uses_mpnet_records());
    }

    #[test]
    fn records_rustls_read_after_its_handshake_keep_it_in_charge() {
        // The server's data leaves with its last flight (half-RTT), so rustls
        // reads it after the handshake; then a key update it answers only
        // with its next write. A hand-over would drop that answer.
        let ca = TestCa::new();
        let mut server_config = (*ca.leaf().server_config(true)).clone();
        server_config.send_half_rtt_data = true;
        let mut client = TlsSession::new(
            config(&ca, true),
            rustls::pki_types::ServerName::try_from("localhost").expect("name"),
        )
        .expect("session");
        let mut server = rustls::ServerConnection::new(Arc::new(server_config)).expect("server");
        assert_eq!(
            client.handshake().expect("hello"),
            crate::tls_session::Handshake::NeedRead
        );
        deliver_to_server(&mut client, &mut server);
        server.writer().write_all(b"half").expect("half-RTT data");
        deliver_to_client(&mut server, &mut client, usize::MAX);
        while client.handshake().expect("handshake") != crate::tls_session::Handshake::Done {}
        assert!(
            !client.uses_mpnet_records(),
            "rustls read a record after the handshake"
        );
        let (_, got) = send_all(&mut client, &mut server, b"request");
        assert_eq!(got, b"request");
        server.refresh_traffic_keys().expect("key update");
        server.writer().write_all(b"answer").expect("write");
        deliver_to_client(&mut server, &mut client, usize::MAX);
        assert_eq!(drain(&mut client, 64).0, b"halfanswer");
        let (_, got) = send_all(&mut client, &mut server, b"next");
        assert_eq!(got, b"next", "the server follows the client's key");
    }

    #[test]
    fn more_rules_of_rfc_8446_and_rustls() {
        type Make = fn(&mut Direction) -> Vec<u8>;
        let cases: [(&str, Make, &str); 4] = [
            (
                "padding past 2^14 + 1 bytes",
                |p| record(p, ContentType::ApplicationData, b"x", MAX_FRAGMENT + 1),
                "PeerSentOversizedRecord",
            ),
            (
                "33 empty records in a row",
                |p| {
                    (0..33)
                        .flat_map(|_| record(p, ContentType::ApplicationData, b"", 0))
                        .collect()
                },
                "TooManyEmptyFragments",
            ),
            (
                "an alert of an unknown level",
                |p| record(p, ContentType::Alert, &[7, 0], 0),
                "AlertReceived(CloseNotify)",
            ),
            (
                "a key update of two bytes",
                |p| {
                    let body = [u8::from(HandshakeType::KeyUpdate), 0, 0, 2, 0, 0];
                    record(p, ContentType::Handshake, &body, 0)
                },
                "TrailingData",
            ),
        ];
        for (what, make, error) in cases {
            let (mut client, mut peer, _) = crafted();
            let (_, end) = feed(&mut client, &make(&mut peer));
            let e = end.expect_err(what);
            assert!(format!("{e:?}").contains(error), "{what}: {e:?}");
            assert!(!client.transmit().is_empty(), "{what}: an alert is owed");
        }
        // 32 empty records in a row are taken, and data after them.
        let (mut client, mut peer, _) = crafted();
        let mut wire: Vec<u8> = (0..32)
            .flat_map(|_| record(&mut peer, ContentType::ApplicationData, b"", 0))
            .collect();
        wire.extend(record(&mut peer, ContentType::ApplicationData, b"data", 0));
        let (got, end) = feed(&mut client, &wire);
        assert_eq!(
            (got.as_slice(), end),
            (&b"data"[..], Ok(Plaintext::NeedRead))
        );
        // A handshake message announced over 64 KiB fails from its header.
        let (mut client, mut peer, _) = crafted();
        let wire = record(&mut peer, ContentType::Handshake, &[4, 1, 0, 0], 0);
        let (_, end) = feed(&mut client, &wire);
        let e = end.expect_err("too large");
        assert!(
            format!("{e:?}").contains("HandshakePayloadTooLarge"),
            "{e:?}"
        );
        // A ticket and a key update in one record; a key update split over
        // two records.
        for split in [false, true] {
            let (mut client, mut peer, _) = crafted();
            let wire = if split {
                let ku = key_update(0);
                [
                    record(&mut peer, ContentType::Handshake, &ku[..2], 0),
                    record(&mut peer, ContentType::Handshake, &ku[2..], 0),
                ]
                .concat()
            } else {
                let body = [ticket(), key_update(0)].concat();
                record(&mut peer, ContentType::Handshake, &body, 0)
            };
            let (_, end) = feed(&mut client, &wire);
            assert_eq!(end, Ok(Plaintext::NeedRead), "split: {split}");
            let layer = client.record_layer().expect("records");
            assert_eq!(layer.rx.seq, 0, "the next key, from its first record");
        }
    }

    #[test]
    fn a_33rd_key_update_without_data_fails() {
        let ca = TestCa::new();
        let (mut client, mut server) =
            pair_with_server(config(&ca, true), ca.leaf().server_config(true));
        deliver_to_server(&mut client, &mut server);
        for _ in 0..32 {
            server.refresh_traffic_keys().expect("key update");
        }
        deliver_to_client(&mut server, &mut client, usize::MAX);
        assert_eq!(drain(&mut client, 64).1, Plaintext::NeedRead);
        server.refresh_traffic_keys().expect("key update");
        deliver_to_client(&mut server, &mut client, usize::MAX);
        let mut dst = [0u8; 16];
        let e = client.read_plaintext(&mut dst).expect_err("too many");
        assert!(
            format!("{e:?}").contains("TooManyKeyUpdateRequests"),
            "{e:?}"
        );
    }

    #[test]
    fn each_tls_1_3_suite_carries_data_both_ways() {
        let ca = TestCa::new();
        for suite in [
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
            rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        ] {
            let mut provider = rustls::crypto::ring::default_provider();
            provider.cipher_suites.retain(|s| s.suite() == suite);
            let mut one = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("TLS 1.3")
                .with_root_certificates(ca.root_store())
                .with_no_client_auth();
            one.enable_secret_extraction = true;
            let (mut client, mut server) =
                pair_with_server(Arc::new(one), ca.leaf().server_config(true));
            let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
            let (_, got) = send_all(&mut client, &mut server, &data);
            assert_eq!(got, data, "{suite:?}");
            assert!(client.uses_mpnet_records(), "{suite:?}");
            server.writer().write_all(&data).expect("write");
            deliver_to_client(&mut server, &mut client, 1000);
            assert_eq!(drain(&mut client, 3000).0, data, "{suite:?}");
        }
    }
}
