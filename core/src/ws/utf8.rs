//! Streaming UTF-8 validation for text messages (SPEC §7: text must be valid
//! UTF-8, else close 1007), fed in pieces as payload bytes arrive so an
//! invalid byte fails the connection at once, however the message is split
//! into frames and the frames into reads (Autobahn 6.4.x: fail fast).
//!
//! ```text
//!            feed(ok bytes)              finish()
//!  +-------+ --------------> +-------+ ----------> Ok (nothing pending)
//!  | Clean |                 | Carry | ----------> Err (message ends mid-character)
//!  +-------+ <-------------- +-------+
//!      |      char completed     |
//!      +-------- bad byte -------+-----> Err (fail with 1007)
//! ```
//!
//! `std::str::from_utf8` does the work: an error with `error_len() ==
//! None` is an incomplete sequence at the end (kept as carry, at most 3
//! bytes), `Some(_)` is an invalid one.

/// Bytes are not valid UTF-8 (or a message ended in the middle of a
/// character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// Validates a byte stream as UTF-8 piece by piece. See the module docs.
///
/// ```
/// use mpnet_core::ws::utf8::Utf8Validator;
/// let bytes = "κόσμε".as_bytes();
/// let mut v = Utf8Validator::default();
/// for b in bytes {
///     v.feed(std::slice::from_ref(b)).unwrap();
/// }
/// assert!(v.finish().is_ok());
/// let mut bad = Utf8Validator::default();
/// assert!(bad.feed(&[0xce, 0xba, 0xe1]).is_ok()); // incomplete so far
/// assert!(bad.feed(&[0x28]).is_err()); // cannot continue 0xe1
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    carry: [u8; 4],
    carry_len: usize,
}

impl Utf8Validator {
    /// Checks the next piece of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidUtf8> {
        if self.carry_len > 0 {
            // Complete the character that the previous piece started.
            let width: usize = match self.carry[0] {
                0xf0..=0xff => 4,
                0xe0..=0xef => 3,
                _ => 2,
            };
            let take = width.saturating_sub(self.carry_len).min(bytes.len());
            let (head, rest) = bytes.split_at(take);
            if let Some(dst) = self.carry.get_mut(self.carry_len..self.carry_len + take) {
                dst.copy_from_slice(head);
            }
            self.carry_len += take;
            bytes = rest;
            match std::str::from_utf8(self.carry.get(..self.carry_len).unwrap_or_default()) {
                Ok(_) => self.carry_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                // Still incomplete: `bytes` is empty now.
                Err(_) => return Ok(()),
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let tail = bytes.get(e.valid_up_to()..).unwrap_or_default();
                if let Some(dst) = self.carry.get_mut(..tail.len()) {
                    dst.copy_from_slice(tail);
                }
                self.carry_len = tail.len();
                Ok(())
            }
        }
    }

    /// Ends the stream: an error when it stopped in the middle of a
    /// character. Resets the validator for the next message.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let pending = self.carry_len;
        *self = Utf8Validator::default();
        if pending == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}
