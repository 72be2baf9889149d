//! Byte ranges into one owned buffer: how [`ResponseHead`] and
//! [`JsHeaders`] keep a reason phrase and many short names and values in
//! one allocation instead of one `String` each.
//!
//! A span is two `u32` offsets, so a buffer can hold at most 4 GiB; the
//! functions that grow a buffer say `None` past that, and each caller
//! decides what that means (a head over its size limit, or a documented
//! panic for a constructor fed program data).
//!
//! [`ResponseHead`]: crate::http1::ResponseHead
//! [`JsHeaders`]: crate::JsHeaders

use std::ops::Range;

/// The bytes `start..end` of some buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The span `start..end`, or `None` if either is past `u32::MAX` (or
    /// `end < start`).
    pub(crate) fn between(start: usize, end: usize) -> Option<Span> {
        let span = Span {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        };
        (span.start <= span.end).then_some(span)
    }

    /// Appends `bytes` to `buf` and returns where they went; `None` (and
    /// `buf` unchanged) if they would end past `u32::MAX`.
    pub(crate) fn push(buf: &mut Vec<u8>, bytes: &[u8]) -> Option<Span> {
        let span = Span::between(buf.len(), buf.len().checked_add(bytes.len())?)?;
        buf.extend_from_slice(bytes);
        Some(span)
    }

    /// [`push`](Self::push) for text.
    pub(crate) fn push_str(buf: &mut String, text: &str) -> Option<Span> {
        let span = Span::between(buf.len(), buf.len().checked_add(text.len())?)?;
        buf.push_str(text);
        Some(span)
    }

    /// The span as a `usize` range.
    pub(crate) fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// The bytes of `buf` this span covers (empty if it lies outside `buf`,
    /// which a span made for `buf` never does).
    pub(crate) fn bytes(self, buf: &[u8]) -> &[u8] {
        buf.get(self.range()).unwrap_or_default()
    }

    /// The text of `text` this span covers (empty if it lies outside `text`
    /// or cuts a character, which a span checked with
    /// [`on_boundaries`](Self::on_boundaries) never does).
    pub(crate) fn str(self, text: &str) -> &str {
        text.get(self.range()).unwrap_or_default()
    }

    /// Whether both ends of this span fall inside `text` on character
    /// boundaries, so that [`str`](Self::str) gives exactly its bytes.
    pub(crate) fn on_boundaries(self, text: &str) -> bool {
        let Range { start, end } = self.range();
        text.is_char_boundary(start) && text.is_char_boundary(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_records_where_bytes_went() {
        let mut buf = b"ab".to_vec();
        let span = Span::push(&mut buf, b"cde").unwrap();
        assert_eq!(span.range(), 2..5);
        assert_eq!(span.bytes(&buf), b"cde");
        assert_eq!(Span::between(3, 2), None);
        assert_eq!(Span::between(0, usize::MAX), None);
    }

    #[test]
    fn boundaries_are_checked() {
        let text = "aé";
        assert!(Span::between(0, 1).unwrap().on_boundaries(text));
        assert!(!Span::between(0, 2).unwrap().on_boundaries(text));
        assert!(!Span::between(0, 9).unwrap().on_boundaries(text));
        assert_eq!(Span::between(0, 2).unwrap().str(text), "");
    }
}
