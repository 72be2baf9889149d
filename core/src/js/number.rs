//! `Number.prototype.toString()` for JSON numbers.

use std::fmt::Write as _;

/// Appends `n` as JavaScript prints it: `1` not `1.0`, `1e+21`, `5e-7`,
/// `0.30000000000000004`, `-0` as `0`. Integers that fit `u64`/`i64` are
/// printed exactly (SPEC §4: the one allowed difference beyond ±2^53).
pub fn write_number(n: &serde_json::Number, out: &mut String) {
    // SPEC §4: numbers are printed from their value, never copied from the
    // input text. serde_json keeps an integer literal that fits in u64/i64 as
    // an integer; within ±2^53 its exact digits are what JavaScript prints,
    // beyond that they are the one allowed difference. Everything else
    // (fractions, exponents, `-0`, integers beyond u64/i64) is an f64.
    if let Some(u) = n.as_u64() {
        // Writing into a `String` cannot fail.
        let _ = write!(out, "{u}");
    } else if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(f) = n.as_f64() {
        write_f64(f, out);
    } else {
        // Unreachable without serde_json's `arbitrary_precision` feature,
        // which the workspace does not enable; keep the literal text.
        let _ = write!(out, "{n}");
    }
}

/// Appends `f` as `Number.prototype.toString()` prints it (radix 10):
/// shortest round-trip digits, `-0` as `0`, exponent form below `1e-6` and
/// from `1e21` up, `NaN`, `Infinity`, `-Infinity`.
fn write_f64(f: f64, out: &mut String) {
    // ryu-js implements ECMAScript's Number::toString exactly, including
    // `-0` → `0` and the non-finite names.
    out.push_str(ryu_js::Buffer::new().format(f));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn num(text: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut out = String::new();
        match v {
            serde_json::Value::Number(n) => write_number(&n, &mut out),
            other => panic!("not a number: {other}"),
        }
        out
    }

    #[test]
    fn known_javascript_outputs() {
        // Expected values are what node 20 prints for
        // `String(JSON.parse(text))`.
        let cases = [
            ("1", "1"),
            ("1.0", "1"),
            ("1e0", "1"),
            ("10E-1", "1"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("0", "0"),
            ("-1", "-1"),
            ("0.1", "0.1"),
            ("0.30000000000000004", "0.30000000000000004"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("123456789012345678901", "123456789012345680000"),
            ("-123456789012345678901", "-123456789012345680000"),
            ("1e-7", "1e-7"),
            ("5e-7", "5e-7"),
            ("1.5e-7", "1.5e-7"),
            ("0.000001", "0.000001"),
            ("123e-20", "1.23e-18"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
            ("1e-400", "0"),
            ("9007199254740992", "9007199254740992"),
            ("-9007199254740992", "-9007199254740992"),
            ("9007199254740991", "9007199254740991"),
            ("1.25", "1.25"),
            ("-2.5e-3", "-0.0025"),
            ("12345.678e2", "1234567.8"),
        ];
        for (text, js) in cases {
            assert_eq!(num(text), js, "input {text}");
        }
    }

    #[test]
    fn integers_beyond_2_pow_53_are_exact() {
        // SPEC §4: the one allowed difference (JavaScript would print
        // 9007199254740992 and 18446744073709552000).
        assert_eq!(num("9007199254740993"), "9007199254740993");
        assert_eq!(num("18446744073709551615"), "18446744073709551615");
        assert_eq!(num("-9223372036854775808"), "-9223372036854775808");
        let mut out = String::new();
        write_number(&serde_json::Number::from(u64::MAX), &mut out);
        assert_eq!(out, "18446744073709551615");
    }

    /// `out` is what `model` printed, or, where the exact value lies halfway
    /// between two shortest candidates, the even one: ECMAScript's
    /// Number::toString picks the even digit on a tie, Rust's `{:e}` (the
    /// model's source) does not. Both must read back as `f`.
    fn matches_model(f: f64, out: &str) -> Result<(), String> {
        let m = model(f);
        if out == m {
            return Ok(());
        }
        let (ob, mb) = (out.as_bytes(), m.as_bytes());
        let tie_neighbour = ob.len() == mb.len()
            && ob[..ob.len() - 1] == mb[..mb.len() - 1]
            && ob[ob.len() - 1].abs_diff(mb[mb.len() - 1]) == 1
            && (ob[ob.len() - 1] - b'0').is_multiple_of(2)
            && m.parse::<f64>() == Ok(f)
            && out.parse::<f64>() == Ok(f);
        if tie_neighbour {
            Ok(())
        } else {
            Err(format!("{out} (model {m})"))
        }
    }

    #[test]
    fn ties_take_the_even_digit() {
        // -73734841149288.625 exactly: JavaScript prints ...288.62 (node
        // agrees), Rust's shortest form ...288.63.
        let f = f64::from_bits(14037935468720020008u64);
        let mut out = String::new();
        write_f64(f, &mut out);
        assert_eq!(out, "-73734841149288.62");
        assert_eq!(matches_model(f, &out), Ok(()));
    }

    /// An independent model of ECMAScript `Number::toString` (radix 10) on top
    /// of Rust's shortest round-trip digits (`{:e}`).
    fn model(f: f64) -> String {
        if f == 0.0 {
            return "0".into();
        }
        let sign = if f < 0.0 { "-" } else { "" };
        let sci = format!("{:e}", f.abs());
        let (mant, exp) = sci.split_once('e').unwrap();
        let digits: String = mant.chars().filter(|c| *c != '.').collect();
        let k = digits.len() as i32;
        let n = exp.parse::<i32>().unwrap() + 1;
        let body = if k <= n && n <= 21 {
            format!("{digits}{}", "0".repeat((n - k) as usize))
        } else if 0 < n && n <= 21 {
            format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
        } else if -6 < n && n <= 0 {
            format!("0.{}{digits}", "0".repeat((-n) as usize))
        } else {
            let e = n - 1;
            let e = if e >= 0 {
                format!("+{e}")
            } else {
                e.to_string()
            };
            if k == 1 {
                format!("{digits}e{e}")
            } else {
                format!("{}.{}e{e}", &digits[..1], &digits[1..])
            }
        };
        format!("{sign}{body}")
    }

    proptest! {
        #[test]
        fn f64_matches_the_ecmascript_model(bits in any::<u64>()) {
            let f = f64::from_bits(bits);
            prop_assume!(f.is_finite());
            let mut out = String::new();
            write_f64(f, &mut out);
            prop_assert_eq!(matches_model(f, &out), Ok(()));
            // And it reads back as the same value.
            let back: f64 = out.parse().unwrap();
            prop_assert!(back == f);
        }

        #[test]
        fn f64_in_decimal_ranges(m in -999_999_999i64..999_999_999, e in -30i32..30) {
            let f: f64 = format!("{m}e{e}").parse().unwrap();
            let mut out = String::new();
            write_f64(f, &mut out);
            prop_assert_eq!(matches_model(f, &out), Ok(()));
        }
    }
}
