//! The `headers` object a mini-program sees in a result or an HTTP error
//! (SPEC §4, JSON shape in §8): the server's names, one entry per name in
//! first-occurrence order, repeated fields joined with `", "` under the
//! first spelling, values as text (invalid UTF-8 replaced with U+FFFD).
//!
//! [`JsHeaders`] keeps all names and values in one `String` with spans
//! into it. Built from a [`ResponseHead`] whose names are distinct and
//! whose bytes are UTF-8, it takes over the head's buffer and span list as
//! they are: no allocation and no copy.
//!
//! [`ResponseHead`]: crate::http1::ResponseHead

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::span::Span;

/// A response's header object (SPEC §4): `(name, value)` pairs in order,
/// names distinct (ASCII case-insensitive), serialised as a JSON object.
///
/// ```
/// use mpnet_core::JsHeaders;
/// let h: JsHeaders = [("Set-Cookie", "a=1"), ("Content-Type", "text/plain"), ("set-cookie", "b=2")]
///     .into_iter()
///     .collect();
/// assert_eq!(h.len(), 2);
/// assert_eq!(h.get("set-cookie"), Some("a=1, b=2"));
/// assert_eq!(
///     serde_json::to_string(&h).unwrap(),
///     r#"{"Set-Cookie":"a=1, b=2","Content-Type":"text/plain"}"#
/// );
/// ```
#[derive(Clone, Default)]
pub struct JsHeaders {
    /// Every name and value (and possibly bytes no span covers, such as
    /// the reason phrase of the head it came from).
    text: String,
    /// Name and value of each entry, in order; each span lies in `text` on
    /// character boundaries, and no two names are equal ignoring ASCII case.
    fields: Vec<(Span, Span)>,
}

impl JsHeaders {
    /// The entries in order: the server's spelling of each name (first
    /// occurrence) and its value.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            text: &self.text,
            fields: self.fields.iter(),
        }
    }

    /// The value of the entry named `name`, compared ASCII
    /// case-insensitively as HTTP names are (RFC 9110 §5.1); names are
    /// distinct in that sense, so at most one entry matches. (A JavaScript
    /// lookup `headers[name]` is exact: compare [`iter`](Self::iter)'s
    /// names for that.)
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// How many entries (distinct names) there are.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The header object of fields packed in `buf` at `fields` (a
    /// response head's buffer): `buf` and `fields` become the object as
    /// they are when the names are distinct and every span is UTF-8 text;
    /// otherwise the object is joined in the same two buffers
    /// ([`joined_in_place`]). Either way no new buffer is made: when `buf`
    /// and `fields` have room (buffers recycled from an earlier object of
    /// the same shape), nothing is allocated.
    pub(crate) fn from_packed(buf: Vec<u8>, fields: Vec<(Span, Span)>) -> JsHeaders {
        if !names_distinct(&buf, &fields) {
            return joined_in_place(buf, fields);
        }
        match String::from_utf8(buf) {
            Ok(text) if all_on_boundaries(&text, &fields) => JsHeaders { text, fields },
            Ok(text) => joined_in_place(text.into_bytes(), fields),
            Err(e) => joined_in_place(e.into_bytes(), fields),
        }
    }

    /// The object's two buffers (its text and its span list), e.g. for a
    /// response head to be packed into; see `http1::HeadBuffers`.
    pub(crate) fn into_parts(self) -> (String, Vec<(Span, Span)>) {
        (self.text, self.fields)
    }

    /// [`from_packed`](Self::from_packed) for a borrowed buffer: a copy of
    /// `buf` and `fields` (two allocations) when they can be used as they
    /// are.
    pub(crate) fn from_packed_ref(buf: &[u8], fields: &[(Span, Span)]) -> JsHeaders {
        match std::str::from_utf8(buf) {
            Ok(text) if names_distinct(buf, fields) && all_on_boundaries(text, fields) => {
                JsHeaders {
                    text: text.to_owned(),
                    fields: fields.to_vec(),
                }
            }
            _ => joined(fields.len(), |i| packed_field(buf, fields, i)),
        }
    }
}

/// Field `i` of a packed buffer, as `(name, value)` bytes.
fn packed_field<'a>(buf: &'a [u8], fields: &[(Span, Span)], i: usize) -> (&'a [u8], &'a [u8]) {
    match fields.get(i) {
        Some(&(name, value)) => (name.bytes(buf), value.bytes(buf)),
        None => (&[], &[]),
    }
}

/// Whether no two names are equal ignoring ASCII case. A pairwise scan:
/// heads have few fields, and it needs no map and no lower-cased copies.
fn names_distinct(buf: &[u8], fields: &[(Span, Span)]) -> bool {
    fields.iter().enumerate().all(|(i, (name, _))| {
        let name = name.bytes(buf);
        fields
            .get(..i)
            .unwrap_or_default()
            .iter()
            .all(|(earlier, _)| !earlier.bytes(buf).eq_ignore_ascii_case(name))
    })
}

/// Whether every span cuts `text` only between characters, so that each
/// covers exactly its bytes as text.
fn all_on_boundaries(text: &str, fields: &[(Span, Span)]) -> bool {
    fields
        .iter()
        .all(|(name, value)| name.on_boundaries(text) && value.on_boundaries(text))
}

/// The header object of `count` fields, field `i` being `field(i)`, in
/// order: repeated names (ASCII case-insensitive) joined with `", "` under
/// the first spelling, names and values as lossy UTF-8 (SPEC §4).
///
/// # Panics
///
/// If the object's text would pass 4 GiB. It never does for a response
/// head's fields: a head is only made when this text cannot pass 4 GiB
/// (`ResponseHead::pack`).
fn joined<'a>(count: usize, field: impl Fn(usize) -> (&'a [u8], &'a [u8])) -> JsHeaders {
    let capacity = (0..count).fold(0usize, |n, i| {
        let (name, value) = field(i);
        n.saturating_add(name.len() + value.len() + 2)
    });
    let mut text = String::with_capacity(capacity);
    let mut fields = Vec::with_capacity(count);
    for i in 0..count {
        let (raw_name, value) = field(i);
        if (0..i).any(|j| field(j).0.eq_ignore_ascii_case(raw_name)) {
            continue;
        }
        let name = push(&mut text, &String::from_utf8_lossy(raw_name));
        let start = text.len();
        push(&mut text, &String::from_utf8_lossy(value));
        for j in i + 1..count {
            let (other, value) = field(j);
            if other.eq_ignore_ascii_case(raw_name) {
                push(&mut text, ", ");
                push(&mut text, &String::from_utf8_lossy(value));
            }
        }
        fields.push((name, span(start, text.len())));
    }
    JsHeaders { text, fields }
}

/// [`joined`] for the fields packed in `buf` at `fields` (repeated names
/// joined with `", "` under the first spelling, values as lossy UTF-8:
/// SPEC §4), built in those same two buffers: the joined text is appended after the packed bytes
/// (copied within `buf`, invalid UTF-8 replaced as
/// `String::from_utf8_lossy` does), the new spans after the old ones, and
/// then the packed part of each is removed from the front.
///
/// # Panics
///
/// If the joined text would pass 4 GiB; a response head's fields never
/// make it do (see [`joined`]).
fn joined_in_place(mut buf: Vec<u8>, mut fields: Vec<(Span, Span)>) -> JsHeaders {
    let base = buf.len();
    let count = fields.len();
    let estimate = fields.iter().fold(0usize, |n, (name, value)| {
        n.saturating_add(name.range().len() + value.range().len() + 2)
    });
    buf.reserve(estimate);
    fields.reserve(count);
    for i in 0..count {
        let Some(&(name, value)) = fields.get(i) else {
            break;
        };
        let raw_name = name.bytes(&buf);
        let seen = fields
            .get(..i)
            .unwrap_or_default()
            .iter()
            .any(|(earlier, _)| earlier.bytes(&buf).eq_ignore_ascii_case(raw_name));
        if seen {
            continue;
        }
        let name_start = buf.len() - base;
        push_lossy_within(&mut buf, name.range());
        let value_start = buf.len() - base;
        let name_span = span(name_start, value_start);
        push_lossy_within(&mut buf, value.range());
        for j in i + 1..count {
            let Some(&(other, value)) = fields.get(j) else {
                break;
            };
            if other.bytes(&buf).eq_ignore_ascii_case(name.bytes(&buf)) {
                buf.extend_from_slice(b", ");
                push_lossy_within(&mut buf, value.range());
            }
        }
        fields.push((name_span, span(value_start, buf.len() - base)));
    }
    buf.drain(..base);
    fields.drain(..count);
    // Only whole characters and U+FFFD were appended, so this is text;
    // the lossy fallback keeps the function total.
    let text = String::from_utf8(buf)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    JsHeaders { text, fields }
}

/// Appends the bytes `src` of `buf` to `buf` as text: valid UTF-8 as it
/// is, each invalid sequence as U+FFFD (exactly as
/// `String::from_utf8_lossy` converts them).
fn push_lossy_within(buf: &mut Vec<u8>, src: std::ops::Range<usize>) {
    let mut at = src.start;
    while at < src.end {
        let chunk = buf
            .get(at..src.end)
            .and_then(|rest| rest.utf8_chunks().next())
            .map(|c| (c.valid().len(), c.invalid().len()));
        let Some((valid, invalid)) = chunk else {
            break;
        };
        buf.extend_from_within(at..at + valid);
        if invalid > 0 {
            buf.extend_from_slice(
                char::REPLACEMENT_CHARACTER
                    .encode_utf8(&mut [0; 4])
                    .as_bytes(),
            );
        }
        at += valid + invalid;
    }
}

/// Appends `s` to `text`; see [`joined`] for the panic.
fn push(text: &mut String, s: &str) -> Span {
    Span::push_str(text, s).unwrap_or_else(|| too_long())
}

/// The span `start..end`; see [`joined`] for the panic.
fn span(start: usize, end: usize) -> Span {
    Span::between(start, end).unwrap_or_else(|| too_long())
}

#[cold]
fn too_long() -> ! {
    panic!("mpnet_core::JsHeaders: header text over 4 GiB")
}

/// The entries of a [`JsHeaders`], in order; made by [`JsHeaders::iter`].
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    text: &'a str,
    fields: std::slice::Iter<'a, (Span, Span)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let (name, value) = self.fields.next()?;
        Some((name.str(self.text), value.str(self.text)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.fields.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let (name, value) = self.fields.next_back()?;
        Some((name.str(self.text), value.str(self.text)))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a JsHeaders {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Collects `(name, value)` pairs the way a response head's fields become
/// the header object: repeated names (ASCII case-insensitive) are joined
/// with `", "` under the first spelling.
///
/// # Panics
///
/// If the names and values together take more than 4 GiB.
impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for JsHeaders {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let pairs: Vec<(N, V)> = iter.into_iter().collect();
        joined(pairs.len(), |i| match pairs.get(i) {
            Some((n, v)) => (n.as_ref().as_bytes(), v.as_ref().as_bytes()),
            None => (&[], &[]),
        })
    }
}

/// As [`FromIterator`]: repeated names are joined.
impl From<Vec<(String, String)>> for JsHeaders {
    fn from(pairs: Vec<(String, String)>) -> Self {
        pairs.into_iter().collect()
    }
}

/// The entries as owned pairs, in order.
impl From<JsHeaders> for Vec<(String, String)> {
    fn from(headers: JsHeaders) -> Self {
        headers
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }
}

/// Equal when the entries are, in the same order (however the text is
/// laid out).
impl PartialEq for JsHeaders {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for JsHeaders {}

/// As a map of names to values, in order.
impl fmt::Debug for JsHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A JSON object of names to values, in order (SPEC §8).
impl Serialize for JsHeaders {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, value) in self {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::borrow::Cow;

    fn lossy(bytes: &[u8]) -> Cow<'_, str> {
        String::from_utf8_lossy(bytes)
    }

    /// The header object as `ResponseHead::js_headers` built it before
    /// `JsHeaders`: a list of owned pairs, joined by a linear scan.
    fn reference(fields: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (name, value) in fields {
            match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                Some((_, joined)) => {
                    joined.push_str(", ");
                    joined.push_str(&lossy(value));
                }
                None => out.push((name.clone(), lossy(value).into_owned())),
            }
        }
        out
    }

    /// `fields` packed as a response head packs them: name, value, ...
    /// after some leading bytes (a reason phrase).
    fn pack(lead: &[u8], fields: &[(String, Vec<u8>)]) -> (Vec<u8>, Vec<(Span, Span)>) {
        let mut buf = lead.to_vec();
        let spans = fields
            .iter()
            .map(|(n, v)| {
                let n = Span::push(&mut buf, n.as_bytes()).unwrap();
                (n, Span::push(&mut buf, v).unwrap())
            })
            .collect();
        (buf, spans)
    }

    fn pairs(h: &JsHeaders) -> Vec<(String, String)> {
        h.clone().into()
    }

    #[test]
    fn repeated_names_join_under_the_first_spelling() {
        let fields = vec![
            ("Set-Cookie".to_string(), b"a=1".to_vec()),
            ("X".to_string(), b"y".to_vec()),
            ("set-cookie".to_string(), b"b=2".to_vec()),
            ("SET-COOKIE".to_string(), b"".to_vec()),
        ];
        let (buf, spans) = pack(b"OK", &fields);
        let h = JsHeaders::from_packed(buf, spans);
        assert_eq!(
            pairs(&h),
            vec![
                ("Set-Cookie".to_string(), "a=1, b=2, ".to_string()),
                ("X".to_string(), "y".to_string()),
            ]
        );
        assert_eq!(h.get("SET-cookie"), Some("a=1, b=2, "));
        assert_eq!(h.get("Y"), None);
    }

    #[test]
    fn invalid_utf8_values_are_replaced() {
        let fields = vec![
            ("A".to_string(), vec![b'x', 0xff, b'y']),
            ("B".to_string(), b"ok".to_vec()),
        ];
        let (buf, spans) = pack(b"", &fields);
        let h = JsHeaders::from_packed(buf, spans);
        assert_eq!(h.get("a"), Some("x\u{fffd}y"));
        assert_eq!(h.get("b"), Some("ok"));
    }

    #[test]
    fn valid_text_across_fields_is_not_taken_as_valid_fields() {
        // "é" split between two values with an empty name in between: the
        // buffer is UTF-8 but neither value is.
        let fields = vec![("A".to_string(), vec![0xc3]), (String::new(), vec![0xa9])];
        let (buf, spans) = pack(b"", &fields);
        assert!(std::str::from_utf8(&buf).is_ok());
        let h = JsHeaders::from_packed(buf.clone(), spans.clone());
        assert_eq!(pairs(&h), reference(&fields));
        assert_eq!(JsHeaders::from_packed_ref(&buf, &spans), h);
    }

    #[test]
    fn distinct_utf8_fields_keep_the_buffer() {
        let fields = vec![
            ("Content-Type".to_string(), b"text/plain".to_vec()),
            ("X-\u{e9}".to_string(), "\u{4e2d}".as_bytes().to_vec()),
        ];
        let (buf, spans) = pack(b"Not Found", &fields);
        let ptr = buf.as_ptr();
        let h = JsHeaders::from_packed(buf, spans);
        assert_eq!(h.text.as_ptr(), ptr, "the buffer was moved, not copied");
        assert_eq!(pairs(&h), reference(&fields));
    }

    #[test]
    fn joining_happens_in_the_buffers_when_they_have_room() {
        let fields = vec![
            ("Set-Cookie".to_string(), b"a=1".to_vec()),
            ("X".to_string(), vec![b'x', 0xff, 0xe4, 0xb8]),
            ("set-cookie".to_string(), b"b=2".to_vec()),
        ];
        let (mut buf, mut spans) = pack(b"Not Found", &fields);
        buf.reserve(256);
        spans.reserve(8);
        let (text_ptr, fields_ptr) = (buf.as_ptr(), spans.as_ptr());
        let h = JsHeaders::from_packed(buf, spans);
        assert_eq!(h.text.as_ptr(), text_ptr, "joined in the head's buffer");
        assert_eq!(h.fields.as_ptr(), fields_ptr, "spans in the head's list");
        assert_eq!(pairs(&h), reference(&fields));
        assert_eq!(h.get("x"), Some("x\u{fffd}\u{fffd}"));
        assert_eq!(h.get("SET-COOKIE"), Some("a=1, b=2"));
    }

    #[test]
    fn serialises_as_an_ordered_object() {
        let h = JsHeaders::from(vec![
            ("b".to_string(), "1".to_string()),
            ("A".to_string(), "\"2\"".to_string()),
        ]);
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"b":"1","A":"\"2\""}"#
        );
        assert_eq!(format!("{h:?}"), r#"{"b": "1", "A": "\"2\""}"#);
        assert_eq!(serde_json::to_string(&JsHeaders::default()).unwrap(), "{}");
        assert!(JsHeaders::default().is_empty());
    }

    #[test]
    fn equality_ignores_layout() {
        let fields = vec![("A".to_string(), b"1".to_vec())];
        let (buf, spans) = pack(b"some reason", &fields);
        let from_head = JsHeaders::from_packed(buf, spans);
        let collected: JsHeaders = [("A", "1")].into_iter().collect();
        assert_eq!(from_head, collected);
        assert_ne!(collected, [("a", "1")].into_iter().collect());
        assert_eq!(from_head.iter().rev().len(), 1);
    }

    fn field() -> impl Strategy<Value = (String, Vec<u8>)> {
        let name = prop::sample::select(vec![
            "a",
            "A",
            "b",
            "Set-Cookie",
            "set-cookie",
            "",
            "\u{e9}",
        ]);
        let value = prop::collection::vec(
            prop::sample::select(vec![b'x', b' ', b',', 0xc3, 0xa9, 0xff, 0xe4, 0xb8, 0xad]),
            0..6,
        );
        (name.prop_map(str::to_string), value)
    }

    proptest! {
        /// Whichever path builds it (the head's buffer taken over, copied,
        /// or a new one joined), the object is the one the old
        /// list-of-pairs code built.
        #[test]
        fn every_path_matches_the_reference(
            lead in "[ -~]{0,4}",
            fields in prop::collection::vec(field(), 0..8),
            extra in 0usize..200,
        ) {
            let expected = reference(&fields);
            let (buf, spans) = pack(lead.as_bytes(), &fields);
            let borrowed = JsHeaders::from_packed_ref(&buf, &spans);
            // Spare capacity (recycled buffers) changes nothing.
            let (mut roomy, mut roomy_spans) = (buf.clone(), spans.clone());
            roomy.reserve(extra);
            roomy_spans.reserve(extra / 8);
            let recycled = JsHeaders::from_packed(roomy, roomy_spans);
            let owned = JsHeaders::from_packed(buf, spans);
            prop_assert_eq!(pairs(&recycled), expected.clone());
            prop_assert_eq!(pairs(&owned), expected.clone());
            prop_assert_eq!(pairs(&borrowed), expected.clone());
            let lossy_pairs: Vec<(String, String)> = fields
                .iter()
                .map(|(n, v)| (n.clone(), lossy(v).into_owned()))
                .collect();
            let collected = JsHeaders::from(lossy_pairs);
            prop_assert_eq!(pairs(&collected), expected);
            prop_assert_eq!(&owned, &collected);
            prop_assert_eq!(owned.len(), owned.iter().count());
        }
    }
}
