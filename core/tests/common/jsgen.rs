//! Random JavaScript-shaped JSON texts from a fixed seed, shared by the
//! differential tests against node, and the check that node is present.
#![allow(dead_code)]

use std::process::Command;

/// SplitMix64: a small deterministic PRNG.
pub struct Rng(u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

pub const SPECIAL_KEYS: &[&str] = &[
    "0",
    "1",
    "2",
    "10",
    "01",
    "00",
    "-1",
    "-0",
    "+1",
    "1.0",
    "1e3",
    " 1",
    "4294967294",
    "4294967295",
    "4294967296",
    "9007199254740991",
    "__proto__",
    "constructor",
    "toString",
    "length",
    "",
    "a",
    "b",
    "a b",
    "a&b=c",
    "中文",
    "😀",
    "\u{2028}",
    "%20",
    "+",
];

pub const SPECIAL_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-0.0",
    "0.0",
    "0e0",
    "1",
    "-1",
    "1.0",
    "1e0",
    "10E-1",
    "1E+0",
    "0.1",
    "0.2",
    "0.30000000000000004",
    "1e21",
    "1e+21",
    "-1e21",
    "1e20",
    "100000000000000000000",
    "999999999999999999999",
    "1e-7",
    "1E-7",
    "5e-7",
    "1.5e-7",
    "0.000001",
    "0.0000001",
    "123e-20",
    "1.7976931348623157e308",
    "-1.7976931348623157e308",
    "5e-324",
    "2.2250738585072014e-308",
    "1e-400",
    "9007199254740991",
    "9007199254740992",
    "-9007199254740992",
    "9007199254740993.0",
    "123456789012345678901",
    "-123456789012345678901",
    "18446744073709551616",
    "1e300",
    "4294967295",
    "4294967296",
    "12345.678e2",
    "3.14159",
    "2.5",
    "-2.5e-3",
    "100",
    "1e2",
    "0.5",
    "1.25e+30",
];

/// Appends a random character to a JSON string literal, escaped or raw.
pub fn push_char(rng: &mut Rng, out: &mut String) {
    let c = match rng.below(12) {
        0..=3 => char::from(b' ' + rng.below(95) as u8),
        4 => char::from(rng.below(0x20) as u8),
        5 => *rng.pick(&[
            '\u{7f}', '\u{2028}', '\u{2029}', '\u{a0}', '\u{feff}', '\u{fffd}',
        ]),
        6 => char::from_u32(0x4e00 + rng.below(0x5200) as u32).unwrap_or('中'),
        7 => char::from_u32(0x1f300 + rng.below(0x300) as u32).unwrap_or('😀'),
        8 => char::from_u32(0xa0 + rng.below(0x700) as u32).unwrap_or('é'),
        9 => *rng.pick(&[
            '%', '+', '&', '=', '#', '?', '/', '\'', '!', '~', '*', '(', ')',
        ]),
        10 => *rng.pick(&['"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}']),
        _ => {
            // Any scalar value outside the surrogates.
            let mut u = rng.below(0x11_0000) as u32;
            if (0xd800..0xe000).contains(&u) {
                u -= 0x800;
            }
            char::from_u32(u).unwrap_or('x')
        }
    };
    let escape = c < ' ' || c == '"' || c == '\\' || rng.chance(10);
    if !escape {
        out.push(c);
        return;
    }
    let short = match c {
        '"' => Some("\\\""),
        '\\' => Some("\\\\"),
        '/' => Some("\\/"),
        '\n' => Some("\\n"),
        '\r' => Some("\\r"),
        '\t' => Some("\\t"),
        '\u{8}' => Some("\\b"),
        '\u{c}' => Some("\\f"),
        _ => None,
    };
    match short {
        Some(s) if rng.chance(70) => out.push_str(s),
        _ => {
            // `\uXXXX`, a surrogate pair beyond the BMP; JSON accepts both
            // cases of hex digits.
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                if rng.chance(50) {
                    out.push_str(&format!("\\u{unit:04X}"));
                } else {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
}

pub fn push_string(rng: &mut Rng, out: &mut String, max_len: u64) {
    out.push('"');
    for _ in 0..rng.below(max_len + 1) {
        push_char(rng, out);
    }
    out.push('"');
}

pub fn push_key(rng: &mut Rng, out: &mut String, used: &[String]) {
    if !used.is_empty() && rng.chance(8) {
        // A duplicate key: JSON.parse keeps its first position, last value.
        let key = rng.pick(used).clone();
        out.push_str(&key);
    } else if rng.chance(45) {
        out.push_str(&serde_json::to_string(rng.pick(SPECIAL_KEYS)).unwrap());
    } else if rng.chance(30) {
        let bound = if rng.chance(50) { 20 } else { 5_000_000_000 };
        out.push_str(&format!("\"{}\"", rng.below(bound)));
    } else {
        push_string(rng, out, 6);
    }
}

pub fn push_number(rng: &mut Rng, out: &mut String) {
    const TWO_53: u64 = 1 << 53;
    let sign = if rng.chance(30) { "-" } else { "" };
    match rng.below(8) {
        0 | 1 => out.push_str(rng.pick::<&str>(SPECIAL_NUMBERS)),
        // Integers within ±2^53, small ones more often.
        2 => out.push_str(&format!("{sign}{}", rng.below(1000))),
        3 => out.push_str(&format!("{sign}{}", rng.below(TWO_53 + 1))),
        // A random finite double, printed by Rust in one of its styles.
        4 => {
            let f = loop {
                let f = f64::from_bits(rng.next());
                if f.is_finite() {
                    break f;
                }
            };
            out.push_str(&match rng.below(3) {
                0 => format!("{f:e}"),
                1 => format!("{f:E}"),
                // `{:?}` never gives an integer literal (it adds `.0` or an
                // exponent), so no exact integer beyond 2^53 comes from here.
                _ => format!("{f:?}"),
            });
        }
        // Decimal mantissa and exponent, the numbers people write.
        5 => {
            let digits = rng.below(10_000_000);
            let frac = rng.below(1000);
            let exp = rng.below(60) as i64 - 30;
            out.push_str(&format!("{sign}{digits}.{frac:03}e{exp}"));
        }
        // Arithmetic like 0.1 + 0.2.
        6 => {
            let a = rng.below(100) as f64 / 10.0;
            let b = rng.below(100) as f64 / 100.0;
            let f = match rng.below(3) {
                0 => a + b,
                1 => a * b,
                _ => a / (b + 1.0),
            };
            out.push_str(&format!("{sign}{f:?}"));
        }
        // Integer literals beyond u64/i64 (21+ digits): floats on both sides.
        _ => {
            out.push_str(sign);
            out.push(char::from(b'1' + rng.below(9) as u8));
            for _ in 0..(20 + rng.below(6)) {
                out.push(char::from(b'0' + rng.below(10) as u8));
            }
        }
    }
}

/// Sometimes JSON whitespace.
pub fn ws(rng: &mut Rng, out: &mut String) {
    if rng.chance(10) {
        out.push(*rng.pick(&[' ', '\t', '\n', '\r']));
    }
}

pub fn push_value(rng: &mut Rng, out: &mut String, depth: u32) {
    ws(rng, out);
    let container = depth < 5 && rng.chance(if depth == 0 { 100 } else { 30 });
    if container {
        let max_len = if rng.chance(10) { 12 } else { 5 };
        let len = rng.below(max_len);
        let object = rng.chance(if depth == 0 { 85 } else { 55 });
        out.push(if object { '{' } else { '[' });
        let mut used = Vec::new();
        for i in 0..len {
            if i > 0 {
                out.push(',');
            }
            if object {
                ws(rng, out);
                let start = out.len();
                push_key(rng, out, &used);
                used.push(out[start..].to_string());
                ws(rng, out);
                out.push(':');
            }
            push_value(rng, out, depth + 1);
        }
        ws(rng, out);
        out.push(if object { '}' } else { ']' });
    } else {
        match rng.below(10) {
            0 => out.push_str("null"),
            1 => out.push_str("true"),
            2 => out.push_str("false"),
            3..=5 => push_number(rng, out),
            _ => push_string(rng, out, 12),
        }
    }
    ws(rng, out);
}

/// Fixed cases worth having on every run, then the random ones.
/// Number of cases.
pub const CASES: usize = 10_000;
const SEED: u64 = 0x6d70_6e65_745f_6a73;

pub fn cases() -> Vec<String> {
    let mut texts: Vec<String> = [
        r#"{"b":1,"4294967295":2,"4294967294":3,"1":4,"01":5,"-1":6,"0":7,"10":8,"2":9}"#,
        r#"{"__proto__":{"a":1},"a":1,"a":2,"0":[],"0":{}}"#,
        r#"{"x":[0.1,1e21,1e-7,-0,1.0,1e0,10E-1,5e-7,1.5e-7,123456789012345678901]}"#,
        r#"["\u2028\u2029\u007f\u0000\u001F\b\f\n\r\t\"\\\/","\ud83d\ude00中文"]"#,
        r#"{"k":{"2":{"1":[{"b":0,"0":1}]}},"s":"a b&c=d+e%20'!~*()"}"#,
        "{}",
        "[]",
        "[[],{},\"\",null]",
        "\"a=b\"",
        "1e21",
        "null",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Deep nesting, within serde_json's recursion limit of 128.
    texts.push(format!("{}1{}", r#"{"a":["#.repeat(60), "]}".repeat(60)));
    let mut rng = Rng(SEED);
    while texts.len() < CASES {
        let mut text = String::new();
        // Depth 5 gives a top-level scalar.
        let depth = if rng.chance(3) { 5 } else { 0 };
        push_value(&mut rng, &mut text, depth);
        texts.push(text);
    }
    texts
}

pub fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}
