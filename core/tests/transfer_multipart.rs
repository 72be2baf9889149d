//! The multipart/form-data body of `my.uploadFile` (SPEC §5): the declared
//! length is the length produced, the body parses back (strictly) into the
//! fields in property order and the file's bytes, and no name or value can
//! break the framing.

use mpnet_core::js;
use mpnet_core::transfer::multipart::{escape_name, BOUNDARY_PREFIX};
use mpnet_core::transfer::{file_content_type, MultipartPlan, Segment};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// One part of a parsed body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads a quoted parameter value: `"` then anything but `"`, CR, LF, then
/// `"`. Returns the value and the rest.
fn quoted(s: &str) -> Result<(&str, &str), String> {
    let s = s.strip_prefix('"').ok_or("parameter value not quoted")?;
    let end = s.find('"').ok_or("unterminated quoted string")?;
    let value = &s[..end];
    if value.contains(['\r', '\n']) {
        return Err("CR or LF inside a quoted string".into());
    }
    Ok((value, &s[end + 1..]))
}

/// Parses `form-data; name="..."[; filename="..."]`, nothing else.
fn content_disposition(v: &str) -> Result<(String, Option<String>), String> {
    let rest = v
        .strip_prefix("form-data; name=")
        .ok_or_else(|| format!("bad Content-Disposition {v:?}"))?;
    let (name, rest) = quoted(rest)?;
    if rest.is_empty() {
        return Ok((name.to_string(), None));
    }
    let rest = rest
        .strip_prefix("; filename=")
        .ok_or_else(|| format!("bad parameter after name: {rest:?}"))?;
    let (filename, rest) = quoted(rest)?;
    if !rest.is_empty() {
        return Err(format!("trailing text in Content-Disposition: {rest:?}"));
    }
    Ok((name.to_string(), Some(filename.to_string())))
}

/// A strict RFC 7578 parser: the body starts with the first delimiter, has
/// no preamble or epilogue text, every part has exactly one
/// Content-Disposition (`form-data; name="..."[; filename="..."]`, quoted
/// strings without `"`, CR or LF) and at most one Content-Type, header
/// lines hold no bare CR or LF, and the close delimiter ends the body with
/// CRLF. (Names may hold other control characters, as browsers send them;
/// so header lines are split by hand rather than by an HTTP header parser.)
fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let dash = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let mut rest = body
        .strip_prefix(dash.as_bytes())
        .ok_or("body does not start with the boundary")?;
    let mut parts = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix(b"--\r\n") {
            if !after.is_empty() {
                return Err(format!("{} bytes after the close delimiter", after.len()));
            }
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("delimiter not followed by CRLF")?;
        let head_len = find(rest, b"\r\n\r\n").ok_or("part headers without an end")?;
        let head = std::str::from_utf8(&rest[..head_len]).map_err(|e| e.to_string())?;
        let head_len = head_len + 4;
        let mut disposition = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            if line.contains(['\r', '\n']) {
                return Err(format!("bare CR or LF in a part header line {line:?}"));
            }
            let (name, value) = line
                .split_once(": ")
                .ok_or_else(|| format!("malformed part header line {line:?}"))?;
            match name {
                "Content-Disposition" if disposition.is_none() => {
                    disposition = Some(content_disposition(value)?)
                }
                "Content-Type" if content_type.is_none() => content_type = Some(value.to_string()),
                other => return Err(format!("unexpected part header {other:?}")),
            }
        }
        let (name, filename) = disposition.ok_or("part without Content-Disposition")?;
        let content = &rest[head_len..];
        let end = find(content, delimiter.as_bytes()).ok_or("part without a delimiter after it")?;
        parts.push(Part {
            name,
            filename,
            content_type,
            body: content[..end].to_vec(),
        });
        rest = &content[end + delimiter.len()..];
    }
}

fn escaped(s: &str) -> String {
    let mut out = String::new();
    escape_name(s, &mut out);
    out
}

fn value_text(v: &Value) -> String {
    let mut out = String::new();
    js::write_query_value(v, &mut out);
    out
}

/// Deterministic "file" bytes.
fn file_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Produces the whole body through a cursor, writing at most
/// `chunks[i % chunks.len()]` bytes per step (0 means 1), reading the file
/// from `file`.
fn stream(plan: &MultipartPlan, file: &[u8], chunks: &[usize]) -> Vec<u8> {
    let mut cur = plan.cursor();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let max = chunks
            .get(i % chunks.len().max(1))
            .copied()
            .unwrap_or(7)
            .max(1);
        i += 1;
        match cur.segment() {
            Segment::Bytes(b) => {
                let n = b.len().min(max);
                out.extend_from_slice(&b[..n]);
                assert_eq!(cur.advance(n as u64), n as u64);
            }
            Segment::File { offset, len } => {
                let n = (len as usize).min(max);
                let start = offset as usize;
                out.extend_from_slice(&file[start..start + n]);
                assert_eq!(cur.advance(n as u64), n as u64);
            }
            Segment::Done => break,
        }
    }
    assert!(cur.is_done());
    assert_eq!(cur.position(), plan.content_length());
    out
}

#[test]
fn fields_come_first_in_js_property_order_then_the_file() {
    let form: Value = serde_json::from_str(
        r#"{"b": "x", "2": true, "a": 1.0, "1": null, "n": 1e21, "f": 0.1,
            "o": {"k": [1, "s", {"z": -0.0}]}, "s": "多 字节"}"#,
    )
    .unwrap();
    let plan = MultipartPlan::new(
        form.as_object().unwrap(),
        "file",
        "photo.JPG",
        file_content_type("photo.JPG"),
        5,
        [7; 16],
    )
    .unwrap();
    let body = stream(&plan, b"\x00\xff\r\n-", &[3]);
    let parts = parse(&body, plan.boundary()).unwrap();
    let got: Vec<(&str, &[u8])> = parts
        .iter()
        .map(|p| (p.name.as_str(), p.body.as_slice()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("1", &b"null"[..]),
            ("2", b"true"),
            ("b", b"x"),
            ("a", b"1"),
            ("n", b"1e+21"),
            ("f", b"0.1"),
            ("o", br#"{"k":[1,"s",{"z":0}]}"#),
            ("s", "多 字节".as_bytes()),
            ("file", b"\x00\xff\r\n-"),
        ]
    );
    let file = parts.last().unwrap();
    assert_eq!(file.filename.as_deref(), Some("photo.JPG"));
    assert_eq!(file.content_type.as_deref(), Some("image/jpeg"));
    assert!(parts[..parts.len() - 1]
        .iter()
        .all(|p| p.filename.is_none() && p.content_type.is_none()));
    assert_eq!(
        plan.content_type_header(),
        format!("multipart/form-data; boundary={}", plan.boundary())
    );
}

#[test]
fn empty_form_and_empty_file() {
    let plan = MultipartPlan::new(
        &Map::new(),
        "f",
        "empty.bin",
        "application/octet-stream",
        0,
        [0; 16],
    )
    .unwrap();
    let body = stream(&plan, b"", &[1000]);
    assert_eq!(body.len() as u64, plan.content_length());
    let parts = parse(&body, plan.boundary()).unwrap();
    assert_eq!(parts.len(), 1);
    assert!(parts[0].body.is_empty());
}

#[test]
fn boundary_is_a_valid_rfc_2046_boundary() {
    for random in [[0u8; 16], [0xff; 16], *b"0123456789abcdef"] {
        let plan = MultipartPlan::new(&Map::new(), "f", "a", "a/b", 0, random).unwrap();
        let b = plan.boundary();
        assert!(b.starts_with(BOUNDARY_PREFIX));
        assert_eq!(b.len(), BOUNDARY_PREFIX.len() + 32);
        assert!(b.len() <= 70);
        assert!(b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    }
    let a = MultipartPlan::new(&Map::new(), "f", "a", "a/b", 0, [1; 16]).unwrap();
    let b = MultipartPlan::new(&Map::new(), "f", "a", "a/b", 0, [2; 16]).unwrap();
    assert_ne!(
        a.boundary(),
        b.boundary(),
        "the boundary comes from the random bytes"
    );
}

#[test]
fn hostile_names_cannot_break_the_framing() {
    let hostile = [
        "a\"; filename=\"evil.sh",
        "x\r\nContent-Type: text/html\r\n\r\nboom",
        "line\nfeed",
        "cr\ronly",
        "\"",
        "名前 😀",
        "%22 already escaped",
        "semi;colon=eq",
        "",
    ];
    let mut form = Map::new();
    for (i, name) in hostile.iter().enumerate() {
        form.insert(name.to_string(), json!(format!("v{i}\r\n--\r\n\r\n")));
    }
    for field in hostile {
        for file_name in hostile {
            let plan =
                MultipartPlan::new(&form, field, file_name, "text/plain", 3, [9; 16]).unwrap();
            let body = stream(&plan, b"abc", &[5, 1, 64]);
            let parts = parse(&body, plan.boundary())
                .unwrap_or_else(|e| panic!("{field:?} / {file_name:?}: {e}"));
            assert_eq!(parts.len(), hostile.len() + 1);
            for (i, (part, name)) in parts.iter().zip(hostile).enumerate() {
                assert_eq!(part.name, escaped(name));
                assert_eq!(part.body, format!("v{i}\r\n--\r\n\r\n").into_bytes());
                assert_eq!(part.filename, None);
            }
            let file = parts.last().unwrap();
            assert_eq!(file.name, escaped(field));
            assert_eq!(file.filename.as_deref(), Some(escaped(file_name).as_str()));
            assert_eq!(file.body, b"abc");
        }
    }
}

#[test]
fn escaping_follows_the_html_standard() {
    assert_eq!(escaped("a\"b"), "a%22b");
    assert_eq!(escaped("a\rb\nc\r\n"), "a%0Db%0Ac%0D%0A");
    assert_eq!(escaped("名\u{0}'%"), "名\u{0}'%");
}

#[test]
fn a_value_holding_the_boundary_moves_the_boundary() {
    let random = [0x5a; 16];
    let natural = MultipartPlan::new(&Map::new(), "f", "a", "a/b", 0, random)
        .unwrap()
        .boundary()
        .to_string();
    let mut form = Map::new();
    form.insert("k".into(), json!(format!("\r\n--{natural}--\r\n")));
    form.insert(natural.clone(), json!(1));
    let plan = MultipartPlan::new(&form, &natural, &natural, "a/b", 2, random).unwrap();
    assert_ne!(plan.boundary(), natural);
    let body = stream(&plan, b"zz", &[4]);
    let parts = parse(&body, plan.boundary()).unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].body, format!("\r\n--{natural}--\r\n").into_bytes());
    assert_eq!(parts[1].name, natural);
    assert_eq!(parts[2].filename.as_deref(), Some(natural.as_str()));
}

#[test]
fn file_content_types() {
    let table = [
        ("a.jpg", "image/jpeg"),
        ("a.JPEG", "image/jpeg"),
        ("a.png", "image/png"),
        ("a.gif", "image/gif"),
        ("a.webp", "image/webp"),
        ("a.bmp", "image/bmp"),
        ("a.svg", "image/svg+xml"),
        ("a.mp4", "video/mp4"),
        ("a.mov", "video/quicktime"),
        ("a.mp3", "audio/mpeg"),
        ("a.wav", "audio/wav"),
        ("a.aac", "audio/aac"),
        ("a.m4a", "audio/mp4"),
        ("a.txt", "text/plain"),
        ("a.json", "application/json"),
        ("a.pdf", "application/pdf"),
        ("a.zip", "application/zip"),
        ("a.tar.gz", "application/octet-stream"),
        ("a.heif2", "application/octet-stream"),
        ("noext", "application/octet-stream"),
        (".png", "application/octet-stream"),
        ("a.", "application/octet-stream"),
    ];
    for (name, ct) in table {
        assert_eq!(file_content_type(name), ct, "{name}");
    }
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,6}",
        "[0-9]{1,3}",
        "[\"\r\n;= a-z%é😀-]{0,8}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::String),
        "[\r\n-]{0,12}".prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Content-Length is exactly the bytes produced, however the transport
    /// splits its writes, and the body parses back into the fields (JS
    /// property order, escaped names, printed values) and the file.
    #[test]
    fn content_length_is_exact_and_the_body_round_trips(
        fields in prop::collection::vec((key(), value()), 0..8),
        field in key(),
        file_name in key(),
        file_len in 0usize..5000,
        seed in any::<u8>(),
        random in any::<[u8; 16]>(),
        chunks in prop::collection::vec(1usize..700, 1..8),
    ) {
        let form: Map<String, Value> = fields.into_iter().collect();
        let file = file_bytes(file_len, seed);
        let ct = file_content_type(&file_name);
        let plan = MultipartPlan::new(&form, &field, &file_name, ct, file_len as u64, random).unwrap();
        let expected_len = plan.content_length();
        prop_assert_eq!(
            expected_len,
            (plan.preamble().len() + file_len + plan.epilogue().len()) as u64
        );
        let body = stream(&plan, &file, &chunks);
        prop_assert_eq!(body.len() as u64, expected_len);

        let parts = parse(&body, plan.boundary()).map_err(TestCaseError::fail)?;
        let want: Vec<(String, Vec<u8>)> = js::ordered_entries(&form)
            .into_iter()
            .map(|(k, v)| (escaped(k), value_text(v).into_bytes()))
            .collect();
        prop_assert_eq!(parts.len(), want.len() + 1);
        for (part, (name, text)) in parts.iter().zip(&want) {
            prop_assert_eq!(&part.name, name);
            prop_assert_eq!(&part.body, text);
            prop_assert_eq!(&part.filename, &None);
        }
        let last = parts.last().unwrap();
        prop_assert_eq!(&last.name, &escaped(&field));
        let want_filename = escaped(&file_name);
        prop_assert_eq!(last.filename.as_deref(), Some(want_filename.as_str()));
        prop_assert_eq!(last.content_type.as_deref(), Some(ct));
        prop_assert_eq!(&last.body, &file);
    }
}
