//! `my.request` options → the request on the wire (SPEC §3, §4), through the
//! JSON bridge, as `mpnet encode` sees it.

use mpnet_core::bridge::{self, BridgeError};
use mpnet_core::request::{PreparedRequest, WireView};
use mpnet_core::{Api, AppContext};

fn ctx_any() -> AppContext {
    AppContext::builder("2021001", "1.2.3")
        .allow_any_origin()
        .user_agent(None)
        .build()
        .unwrap()
}

fn ctx_whitelist(entries: &[&str]) -> AppContext {
    AppContext::builder("2021001", "1.2.3")
        .whitelist(entries)
        .unwrap()
        .user_agent(None)
        .build()
        .unwrap()
}

fn encode_in(ctx: &AppContext, json: &str) -> Result<WireView, u32> {
    let opts = match bridge::request_options(json) {
        Ok(o) => o,
        Err(BridgeError::Options(e)) => return Err(e.code(Api::Request)),
        Err(BridgeError::Syntax(m)) => panic!("syntax error in test input: {m}"),
    };
    PreparedRequest::new(ctx, &opts)
        .map(|p| p.wire_view(ctx.limits()))
        .map_err(|e| e.code(Api::Request))
}

fn encode(json: &str) -> Result<WireView, u32> {
    encode_in(&ctx_any(), json)
}

fn body(view: &WireView) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&view.body)
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

fn header<'a>(view: &'a WireView, name: &str) -> Option<&'a str> {
    view.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn seed_post_example_is_json_with_default_headers() {
    let v = encode(
        r#"{"url":"https://httpbin.org/post","method":"POST","data":{"from":"支付宝","production":"AlipayJSAPI"},"dataType":"json"}"#,
    )
    .unwrap();
    assert_eq!(v.method, "POST");
    assert_eq!(v.url, "https://httpbin.org/post");
    assert_eq!(body(&v), r#"{"from":"支付宝","production":"AlipayJSAPI"}"#);
    assert_eq!(header(&v, "content-type"), Some("application/json"));
    assert_eq!(header(&v, "host"), Some("httpbin.org"));
    assert_eq!(
        header(&v, "content-length"),
        Some(body(&v).len().to_string().as_str())
    );
    assert_eq!(
        header(&v, "referer"),
        Some("https://urlhost/2021001/1.2.3/page-frame.html")
    );
    assert_eq!(header(&v, "accept-encoding"), Some("gzip, deflate"));
}

#[test]
fn get_data_goes_into_the_query_in_js_property_order() {
    let v = encode(r#"{"url":"https://a.example/p?x=1#frag","data":{"b":"a b","2":true,"1":null,"n":1.0,"o":{"k":[1,"é"]}}}"#)
        .unwrap();
    assert_eq!(
        v.url,
        "https://a.example/p?x=1&1=null&2=true&b=a%20b&n=1&o=%7B%22k%22%3A%5B1%2C%22%C3%A9%22%5D%7D"
    );
    assert_eq!(v.body, "");
    assert_eq!(header(&v, "content-length"), None);
}

#[test]
fn get_without_query_uses_question_mark_and_empty_data_appends_nothing() {
    assert_eq!(
        encode(r#"{"url":"https://a.example/p","data":{"k":"v"}}"#)
            .unwrap()
            .url,
        "https://a.example/p?k=v"
    );
    for data in ["{}", "\"\"", "[]"] {
        let json = format!(r#"{{"url":"https://a.example/p","data":{data}}}"#);
        assert_eq!(encode(&json).unwrap().url, "https://a.example/p", "{data}");
    }
}

#[test]
fn get_string_data_is_appended_as_written() {
    let v = encode(r#"{"url":"https://a.example/p?x='1'","data":"y='2'&z=%20"}"#).unwrap();
    assert_eq!(v.url, "https://a.example/p?x='1'&y='2'&z=%20");
}

#[test]
fn form_content_type_makes_a_query_string_body() {
    let v = encode(
        r#"{"url":"https://a.example/f","method":"put","headers":{"Content-Type":"Application/X-WWW-Form-Urlencoded; charset=UTF-8"},"data":{"a":"1 2","b":[1,2]}}"#,
    )
    .unwrap();
    assert_eq!(v.method, "PUT");
    assert_eq!(body(&v), "a=1%202&b=%5B1%2C2%5D");
}

#[test]
fn other_content_types_get_json_bodies_and_strings_as_is() {
    let v = encode(r#"{"url":"https://a.example/f","method":"DELETE","headers":{"content-type":"text/plain"},"data":{"z":1e21,"a":5e-7}}"#)
        .unwrap();
    assert_eq!(body(&v), r#"{"z":1e+21,"a":5e-7}"#);
    let v = encode(r#"{"url":"https://a.example/f","method":"POST","data":"raw text"}"#).unwrap();
    assert_eq!(body(&v), "raw text");
}

#[test]
fn binary_data_is_sent_as_is() {
    let v =
        encode(r#"{"url":"https://a.example/f","method":"POST","data":"AAH/","isBuffer":true}"#)
            .unwrap();
    assert_eq!(v.body, "AAH/");
    assert_eq!(header(&v, "content-length"), Some("3"));
}

#[test]
fn post_without_data_has_zero_length() {
    let v = encode(r#"{"url":"https://a.example/f","method":"POST"}"#).unwrap();
    assert_eq!(header(&v, "content-length"), Some("0"));
}

#[test]
fn caller_referer_and_reserved_headers_never_reach_the_wire() {
    let v = encode(
        r#"{"url":"https://a.example/","headers":{"Referer":"https://evil/","HOST":"evil","Connection":"close","Content-Length":"99","X-A":"1"}}"#,
    )
    .unwrap();
    assert_eq!(
        header(&v, "referer"),
        Some("https://urlhost/2021001/1.2.3/page-frame.html")
    );
    assert_eq!(header(&v, "host"), Some("a.example"));
    assert_eq!(header(&v, "connection"), None);
    assert_eq!(header(&v, "content-length"), None);
    assert_eq!(header(&v, "x-a"), Some("1"));
    assert_eq!(v.headers.iter().filter(|(k, _)| k == "host").count(), 1);
}

#[test]
fn error_2_cases() {
    for json in [
        r#"{"url":""}"#,
        r#"{"url":"not a url"}"#,
        r#"{"url":"https://a.example/","headers":{"x":"a\r\nb: c"}}"#,
        r#"{"url":"https://a.example/","headers":{"Host":"evil\r\nX-Injected: 1"}}"#,
        r#"{"url":"https://a.example/","headers":{"referer":"a\nb"}}"#,
        r#"{"url":"https://a.example/","headers":{"Content-Length":"1\u0000"}}"#,
        r#"{"url":"https://a.example/","headers":{"bad name":"v"}}"#,
        r#"{"url":"https://a.example/","method":"HEAD"}"#,
        r#"{"url":"https://a.example/","data":"AA==","isBuffer":true}"#,
        r#"{"url":"https://user:pw@a.example/"}"#,
        r#"{"url":"https://a.example/\r\nx"}"#,
    ] {
        assert_eq!(encode(json).err(), Some(2), "{json}");
    }
    let long = format!(r#"{{"url":"https://a.example/{}"}}"#, "a".repeat(9000));
    assert_eq!(encode(&long).err(), Some(2));
}

/// The message a call's options fail with.
fn error_message_in(ctx: &AppContext, json: &str) -> String {
    let opts = match bridge::request_options(json) {
        Ok(o) => o,
        Err(e) => panic!("options refused: {e:?}"),
    };
    match PreparedRequest::new(ctx, &opts) {
        Ok(_) => panic!("{json} was accepted"),
        Err(e) => e.message().to_owned(),
    }
}

/// SPEC §4: the URL limit holds for what is sent, a GET's data included.
#[test]
fn a_get_whose_data_makes_the_url_too_long_is_2() {
    let fits = format!(
        r#"{{"url":"https://a.example/p","data":{{"k":"{}"}}}}"#,
        "v".repeat(8000)
    );
    assert!(encode(&fits).is_ok());
    let over = format!(
        r#"{{"url":"https://a.example/p","data":{{"k":"{}"}}}}"#,
        "v".repeat(8200)
    );
    assert_eq!(encode(&over).err(), Some(2));
    let message = error_message_in(&ctx_any(), &over);
    assert!(
        message.contains("data added") && message.contains("8192"),
        "{message}"
    );
    // The same data in a POST's body is not part of the URL.
    let post = format!(
        r#"{{"url":"https://a.example/p","method":"POST","data":{{"k":"{}"}}}}"#,
        "v".repeat(8200)
    );
    assert!(encode(&post).is_ok());
}

/// A written default port is not in the URL's text, but it is what keeps
/// the origin out of a whitelist whose entry has no port: the message says so.
#[test]
fn the_whitelist_message_names_a_written_default_port() {
    let ctx = ctx_whitelist(&["https://api.example.com"]);
    let message = error_message_in(&ctx, r#"{"url":"https://api.example.com:443/x"}"#);
    assert!(
        message.contains("https://api.example.com:443 ") && message.contains("writes port 443"),
        "{message}"
    );
    let message = error_message_in(&ctx, r#"{"url":"https://api.example.com:8443/x"}"#);
    assert_eq!(
        message,
        "origin https://api.example.com:8443 is not in the domain whitelist"
    );
}

#[test]
fn error_11_cases() {
    let ctx = ctx_whitelist(&["https://api.example.com", "https://*.cdn.example"]);
    for url in [
        "http://api.example.com/",
        "ftp://api.example.com/",
        "https://api.example.com:443/",
        "https://api.example.com:8443/",
        "https://evil.example/",
        "https://cdn.example/",
        "https://api.example.com.evil.example/",
    ] {
        let json = format!(r#"{{"url":"{url}"}}"#);
        assert_eq!(encode_in(&ctx, &json).err(), Some(11), "{url}");
    }
    for url in [
        "https://API.example.com./x",
        "https://a.cdn.example/",
        "https://a.b.cdn.example/",
    ] {
        let json = format!(r#"{{"url":"{url}"}}"#);
        assert!(encode_in(&ctx, &json).is_ok(), "{url}");
    }
    // Plain http is refused even with allow-any, unless the loopback switch is on.
    assert_eq!(
        encode(r#"{"url":"http://127.0.0.1:8080/"}"#).err(),
        Some(11)
    );
}

#[test]
fn error_15_malformed_percent_encoding() {
    for json in [
        r#"{"url":"https://a.example/?q=%E4%B8"}"#,
        r#"{"url":"https://a.example/?q=%zz"}"#,
        r#"{"url":"https://a.example/","data":"q=%"}"#,
    ] {
        assert_eq!(encode(json).err(), Some(15), "{json}");
    }
    assert!(encode(r#"{"url":"https://a.example/?q=%E4%B8%AD"}"#).is_ok());
}

#[test]
fn lone_surrogate_in_data_is_error_2() {
    assert_eq!(
        encode(r#"{"url":"https://a.example/","data":{"k":"\ud800"}}"#).err(),
        Some(2)
    );
}

/// The context memoises URL parses (`AppContext::parse_target`): a URL
/// requested again gives the same wire bytes, and a GET's `data` appended
/// to one request's query never leaks into the next request's.
#[test]
fn repeated_url_in_one_context_encodes_the_same() {
    use mpnet_core::{Limits, Target};
    let ctx = ctx_any();
    let fresh = |json: &str| encode_in(&ctx_any(), json).unwrap();
    let plain = r#"{"url":"https://127.0.0.1:8443/1k?x=1"}"#;
    let with_data = r#"{"url":"https://127.0.0.1:8443/1k?x=1","data":{"a":"b c"}}"#;
    for _ in 0..3 {
        let v = encode_in(&ctx, plain).unwrap();
        assert_eq!(v, fresh(plain));
        assert_eq!(v.url, "https://127.0.0.1:8443/1k?x=1");
        assert_eq!(header(&v, "host"), Some("127.0.0.1:8443"));
        let v = encode_in(&ctx, with_data).unwrap();
        assert_eq!(v, fresh(with_data));
        assert_eq!(v.url, "https://127.0.0.1:8443/1k?x=1&a=b%20c");
    }
    let url = "https://API.example.com./p?q='1'";
    let parsed = ctx.parse_target(url).unwrap();
    assert_eq!(parsed, Target::parse(url, &Limits::default()).unwrap());
    assert_eq!(ctx.parse_target(url).unwrap(), parsed);
    assert_eq!(
        ctx.parse_target("ftp://a/"),
        Target::parse("ftp://a/", &Limits::default())
    );
}

/// The parse is memoised, the domain policy is not: a URL the policy
/// refuses is refused every time, and URL errors stay the same.
#[test]
fn policy_and_url_errors_repeat_on_every_request() {
    let ctx = ctx_whitelist(&["https://api.example.com"]);
    for _ in 0..3 {
        assert!(encode_in(&ctx, r#"{"url":"https://api.example.com/x"}"#).is_ok());
        assert_eq!(
            encode_in(&ctx, r#"{"url":"https://evil.example.com/x"}"#),
            Err(11)
        );
        assert_eq!(
            encode_in(&ctx, r#"{"url":"https://api.example.com:443/x"}"#),
            Err(11)
        );
        assert_eq!(
            encode_in(&ctx, r#"{"url":"http://api.example.com/x"}"#),
            Err(11)
        );
        assert_eq!(
            encode_in(&ctx, r#"{"url":"https://u@api.example.com/x"}"#),
            Err(2)
        );
        assert_eq!(
            encode_in(&ctx, r#"{"url":"https://api.example.com/?a=%zz"}"#),
            Err(15)
        );
    }
}

/// A request that sets no headers shares its context's default header map
/// (built once); it is the very map a request builds for itself when its
/// caller headers are all dropped, and goes on the wire the same way.
#[test]
fn requests_without_headers_share_the_default_map() {
    let ctx = AppContext::builder("2021001", "1.2.3")
        .allow_any_origin()
        .build()
        .unwrap();
    let prepare =
        |json: &str| PreparedRequest::new(&ctx, &bridge::request_options(json).unwrap()).unwrap();
    let a = prepare(r#"{"url":"https://a.example/x"}"#);
    let b = prepare(r#"{"url":"https://b.example/y","method":"POST","data":{"k":1}}"#);
    assert!(std::ptr::eq(a.headers(), b.headers()));
    let dropped = prepare(r#"{"url":"https://a.example/x","headers":{"Host":"h","Referer":"r"}}"#);
    assert!(!std::ptr::eq(a.headers(), dropped.headers()));
    assert_eq!(a.headers(), dropped.headers());
    assert_eq!(a, dropped);
    assert_eq!(a.wire_view(ctx.limits()), dropped.wire_view(ctx.limits()));
    let names: Vec<String> = a
        .wire_view(ctx.limits())
        .headers
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        names,
        [
            "host",
            "content-type",
            "referer",
            "user-agent",
            "accept-encoding"
        ]
    );
    let own = prepare(r#"{"url":"https://a.example/x","headers":{"x-a":"1"}}"#);
    assert_eq!(own.headers().len(), a.headers().len() + 1);
    // Another context has its own defaults (its own referer).
    let other = AppContext::builder("2021002", "1.2.3")
        .allow_any_origin()
        .build()
        .unwrap();
    let c = PreparedRequest::new(
        &other,
        &bridge::request_options(r#"{"url":"https://a.example/x"}"#).unwrap(),
    )
    .unwrap();
    assert!(!std::ptr::eq(a.headers(), c.headers()));
    assert_eq!(
        c.headers()["referer"],
        "https://urlhost/2021002/1.2.3/page-frame.html"
    );
}

/// What a transport writes for a request (`exchange_in`): a small body goes
/// in the head's buffer (nothing left to write after it), a body over
/// `ATTACHED_BODY_MAX` is left to write after the head; either way the bytes
/// on the wire are the head the wire view shows, then the body.
#[test]
fn exchange_in_attaches_small_bodies_only() {
    use mpnet_core::http1::ATTACHED_BODY_MAX;
    let ctx = ctx_any();
    for len in [1, ATTACHED_BODY_MAX, ATTACHED_BODY_MAX + 1] {
        let json = format!(
            r#"{{"url":"https://a.example/f","method":"POST","data":"{}"}}"#,
            "d".repeat(len)
        );
        let opts = bridge::request_options(&json).unwrap_or_else(|_| panic!("options"));
        let prepared = PreparedRequest::new(&ctx, &opts).unwrap();
        let alone = prepared.exchange(ctx.limits()).head().to_vec();
        let (exchange, rest) = prepared.exchange_in(ctx.limits(), Vec::new());
        let wire = [exchange.head(), rest].concat();
        assert_eq!(wire, [&alone[..], &prepared.body()[..]].concat(), "{len}");
        if len <= ATTACHED_BODY_MAX {
            assert!(rest.is_empty(), "{len}: attached");
        } else {
            assert_eq!(rest.len(), len, "{len}: written after the head");
            assert_eq!(exchange.head(), &alone[..]);
        }
    }
}

/// SPEC §4 `timeout`, §6, §7: any finite number of milliseconds >= 0 is a
/// valid timeout, even one past what the clock holds (1.8e22 ms is about
/// 5.7e11 years, `Instant` on Linux about 2.9e11): the call's deadline is
/// then one that never passes, never a panic.
#[test]
fn a_timeout_past_what_the_clock_holds_is_a_deadline_that_never_passes() {
    use mpnet_core::request::RequestFlow;
    use mpnet_core::transfer::{download_options, DownloadFlow};
    use mpnet_core::ws::{options::connect_options, ClientHandshake};
    use std::time::{Duration, Instant};

    let ctx = AppContext::builder("2021001", "1.2.3")
        .allow_any_origin()
        .temp_dir(std::env::temp_dir())
        .build()
        .unwrap();
    let now = Instant::now();
    let day_later = now + Duration::from_secs(86_400);
    for ms in ["1.8e22", "1.7e19", "9.2e18"] {
        let json = format!(r#"{{"url":"https://a.example/x","timeout":{ms}}}"#);
        let opts = bridge::request_options(&json).expect("a valid timeout");
        let flow = RequestFlow::new(&ctx, &opts, now).expect("a valid request");
        assert!(flow.poll_timeout() > day_later, "request, timeout {ms}");

        let opts = download_options(&json).expect("a valid timeout");
        let flow = DownloadFlow::new(&ctx, &opts, now).expect("a valid download");
        assert!(flow.poll_timeout() > day_later, "download, timeout {ms}");

        let json = format!(r#"{{"url":"wss://a.example/ws","timeout":{ms}}}"#);
        let opts = connect_options(&json).expect("a valid timeout");
        let hs = ClientHandshake::new(&ctx, &opts, [7; 16]).expect("a valid connect");
        assert!(hs.deadline(now) > day_later, "connectSocket, timeout {ms}");
    }
}
