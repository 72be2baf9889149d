//! `my.uploadFile` and `my.downloadFile` from JSON options to the request
//! on the wire and from the response head to the result (SPEC §3, §5, §6,
//! §8): error codes, heads, status classification, redirects.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mpnet_core::bridge::BridgeError;
use mpnet_core::http1::ResponseHead;
use mpnet_core::transfer::{
    download_options, upload_options, DownloadFlow, DownloadStep, PreparedDownload, PreparedUpload,
    Segment, UploadRequest,
};
use mpnet_core::{Api, AppContext, Error};

fn ctx() -> AppContext {
    AppContext::builder("2021001", "1.2.3")
        .whitelist(["https://api.example.com", "https://*.cdn.example.com"])
        .unwrap()
        .user_agent(None)
        .read_dir("/srv/app/files")
        .temp_dir("/srv/app/tmp")
        .build()
        .unwrap()
}

fn ctx_loopback() -> AppContext {
    AppContext::builder("2021001", "1.2.3")
        .allow_any_origin()
        .allow_insecure_loopback(true)
        .user_agent(None)
        .read_dir("/srv/app/files")
        .temp_dir("/srv/app/tmp")
        .build()
        .unwrap()
}

fn head(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
    ResponseHead::new(
        status,
        "Reason",
        http::Version::HTTP_11,
        headers.iter().copied(),
    )
}

fn options_error(e: BridgeError) -> Error {
    match e {
        BridgeError::Options(e) => e,
        BridgeError::Syntax(m) => panic!("syntax error in test input: {m}"),
    }
}

/// The upload error code, or the checked request.
fn upload_in(ctx: &AppContext, json: &str) -> Result<UploadRequest, u32> {
    let opts = upload_options(json).map_err(|e| options_error(e).code(Api::Upload))?;
    UploadRequest::new(ctx, &opts).map_err(|e| e.code(Api::Upload))
}

fn upload_json(url: &str, file_path: &str, file_name: &str) -> String {
    serde_json::json!({"url": url, "filePath": file_path, "fileName": file_name}).to_string()
}

#[test]
fn upload_error_codes() {
    let c = ctx();
    let cases: &[(String, u32)] = &[
        (r#"{"filePath":"a.jpg","fileName":"file"}"#.into(), 2),
        (upload_json("", "a.jpg", "file"), 2),
        (upload_json("not a url", "a.jpg", "file"), 2),
        (upload_json("https://api.example.com/u?x=%zz", "a.jpg", "file"), 2),
        (upload_json("https://api.example.com/u", "", "file"), 2),
        (upload_json("https://api.example.com/u", "a.jpg", ""), 2),
        (
            r#"{"url":"https://api.example.com/u","filePath":"a.jpg","fileName":"f","header":{"a b":"1"}}"#
                .into(),
            2,
        ),
        (
            r#"{"url":"https://api.example.com/u","filePath":"a.jpg","fileName":"f","timeout":5000}"#
                .into(),
            12,
        ),
        (upload_json("https://evil.example.org/u", "a.jpg", "file"), 13),
        (upload_json("http://api.example.com/u", "a.jpg", "file"), 13),
        (upload_json("wss://api.example.com/u", "a.jpg", "file"), 13),
        (upload_json("ftp://api.example.com/u", "a.jpg", "file"), 13),
        (upload_json("https://api.example.com/u", "../a.jpg", "file"), 13),
        (upload_json("https://api.example.com/u", "/etc/passwd", "file"), 13),
        (upload_json("https://api.example.com/u", "sub/", "file"), 11),
    ];
    for (json, code) in cases {
        assert_eq!(upload_in(&c, json).err(), Some(*code), "{json}");
    }
    // http to loopback only with the development switch.
    assert!(upload_in(
        &ctx_loopback(),
        &upload_json("http://127.0.0.1:8080/u", "a", "f")
    )
    .is_ok());
    assert_eq!(
        upload_in(&ctx_loopback(), &upload_json("http://10.0.0.1/u", "a", "f")).err(),
        Some(13)
    );
}

#[test]
fn upload_head_and_body() {
    let c = ctx();
    let req = upload_in(
        &c,
        r#"{"url":"https://api.example.com/upload?x=1#frag","filePath":"photos/../IMG 1.JPG",
            "fileName":"file","fileType":"image","header":{"Content-Type":"text/plain","X-Token":"t",
            "Content-Length":"1","Referer":"https://evil"},"formData":{"user":"alice","n":2}}"#,
    )
    .unwrap();
    assert_eq!(req.path(), PathBuf::from("/srv/app/files/IMG 1.JPG"));
    assert_eq!(req.base_name(), "IMG 1.JPG");
    let prepared = req.prepare(10, [0xcd; 16]).unwrap();
    let boundary = prepared.plan().boundary().to_string();
    let exchange = prepared.exchange(c.limits());
    let head = String::from_utf8(exchange.head().to_vec()).unwrap();
    let len = prepared.content_length();
    assert_eq!(exchange.body_len(), Some(len));
    assert_eq!(
        head,
        format!(
            "POST /upload?x=1 HTTP/1.1\r\nhost: api.example.com\r\n\
             content-type: multipart/form-data; boundary={boundary}\r\n\
             x-token: t\r\nreferer: https://urlhost/2021001/1.2.3/page-frame.html\r\n\
             content-length: {len}\r\n\r\n"
        )
    );

    let mut body = prepared.body();
    let mut bytes = Vec::new();
    let mut events = Vec::new();
    loop {
        match body.segment() {
            Segment::Bytes(b) => {
                bytes.extend_from_slice(&b);
                events.extend(body.advance(b.len() as u64));
            }
            Segment::File { len, .. } => {
                bytes.extend(std::iter::repeat_n(b'F', len as usize));
                events.extend(body.advance(len));
            }
            Segment::Done => break,
        }
    }
    assert!(body.is_done());
    assert_eq!(bytes.len() as u64, len);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("name=\"user\"\r\n\r\nalice\r\n"));
    assert!(text.contains("name=\"n\"\r\n\r\n2\r\n"));
    assert!(text.contains(
        "name=\"file\"; filename=\"IMG 1.JPG\"\r\nContent-Type: image/jpeg\r\n\r\nFFFFFFFFFF\r\n"
    ));
    let last = events.last().unwrap();
    assert_eq!(last.progress, 100);
    assert_eq!(last.total_bytes_written, len);
    assert_eq!(last.total_bytes_expected_to_write, len);
}

#[test]
fn prepared_upload_new_is_both_steps() {
    let c = ctx();
    let opts = upload_options(&upload_json("https://api.example.com/u", "a.bin", "f")).unwrap();
    let p = PreparedUpload::new(&c, &opts, 3, [1; 16]).unwrap();
    let q = UploadRequest::new(&c, &opts)
        .unwrap()
        .prepare(3, [1; 16])
        .unwrap();
    assert_eq!(p, q);
    assert_eq!(
        p.headers()["content-type"],
        format!("multipart/form-data; boundary={}", p.plan().boundary()).as_str()
    );
}

#[test]
fn upload_results() {
    let c = ctx();
    let opts = upload_options(&upload_json("https://api.example.com/u", "a.bin", "f")).unwrap();
    let p = PreparedUpload::new(&c, &opts, 3, [1; 16]).unwrap();

    let h = head(
        200,
        &[
            ("Content-Type", "application/json"),
            ("Set-Cookie", "a"),
            ("set-cookie", "b"),
        ],
    );
    assert_eq!(
        serde_json::to_value(p.headers_received(&h)).unwrap(),
        serde_json::json!({"header": {"Content-Type": "application/json", "Set-Cookie": "a, b"}})
    );
    let ok = p.finish(&h, br#"{"ok":true}"#.to_vec()).unwrap();
    assert_eq!(ok.header("set-cookie"), Some("a, b"));
    assert_eq!(
        serde_json::to_value(&ok).unwrap(),
        serde_json::json!({"data": "{\"ok\":true}", "statusCode": "200",
            "header": {"Content-Type": "application/json", "Set-Cookie": "a, b"}})
    );
    // 3xx is not followed: it is the result.
    let moved = p
        .finish(&head(302, &[("Location", "/x")]), Vec::new())
        .unwrap();
    assert_eq!(moved.status_code, "302");
    // Invalid UTF-8 is replaced, not refused.
    let lossy = p.finish(&head(201, &[]), vec![b'a', 0xff]).unwrap();
    assert_eq!(lossy.data, "a\u{fffd}");

    for status in [400, 404, 413, 429, 500, 599] {
        let e = p.finish(&head(status, &[]), b"nope".to_vec()).unwrap_err();
        assert_eq!(e.code(Api::Upload), 12, "{status}");
        let r = e.response().unwrap();
        assert_eq!((r.status, r.data.as_str()), (status, "nope"));
    }
    let collector = p.body_collector(&head(200, &[("Content-Length", "4")]), c.limits());
    assert!(collector.is_ok());
    assert_eq!(
        mpnet_core::transfer::upload::aborted().code(Api::Upload),
        12
    );
    assert_eq!(
        mpnet_core::transfer::upload::timed_out().code(Api::Upload),
        12
    );
}

fn download_in(ctx: &AppContext, json: &str) -> Result<DownloadFlow, u32> {
    let opts = download_options(json).map_err(|e| options_error(e).code(Api::Download))?;
    DownloadFlow::new(ctx, &opts, Instant::now()).map_err(|e| e.code(Api::Download))
}

fn download_url(url: &str) -> String {
    serde_json::json!({ "url": url }).to_string()
}

#[test]
fn download_error_codes() {
    let c = ctx();
    let cases: &[(String, u32)] = &[
        ("{}".into(), 2),
        (download_url(""), 2),
        (download_url("::"), 2),
        (download_url("https://api.example.com/a?%zz"), 2),
        (
            r#"{"url":"https://api.example.com/a","header":{"X":"a\nb"}}"#.into(),
            2,
        ),
        (
            r#"{"url":"https://api.example.com/a","timeout":-5}"#.into(),
            2,
        ),
        (download_url("http://api.example.com/a.jpg"), 20),
        (download_url("ftp://api.example.com/a.jpg"), 20),
        (download_url("wss://api.example.com/a.jpg"), 20),
        (download_url("http://127.0.0.1/a.jpg"), 20),
        (download_url("https://evil.example.org/a.jpg"), 13),
        (download_url("https://cdn.example.com/a.jpg"), 13),
    ];
    for (json, code) in cases {
        assert_eq!(download_in(&c, json).err(), Some(*code), "{json}");
    }
    assert!(download_in(&c, &download_url("https://img.cdn.example.com/a.jpg")).is_ok());
    assert!(download_in(&ctx_loopback(), &download_url("http://127.0.0.1:9/a.jpg")).is_ok());
    assert_eq!(
        download_in(&ctx_loopback(), &download_url("http://example.com/a.jpg")).err(),
        Some(20)
    );
    let no_temp = AppContext::builder("a", "1")
        .allow_any_origin()
        .build()
        .unwrap();
    assert_eq!(
        download_in(&no_temp, &download_url("https://example.com/a.jpg")).err(),
        Some(12)
    );
}

#[test]
fn download_head_sends_no_accept_encoding_and_no_body() {
    let c = ctx();
    let opts = download_options(
        r#"{"url":"https://api.example.com/files/a.jpg?v=2","header":{"Authorization":"Bearer t"}}"#,
    )
    .unwrap();
    let p = PreparedDownload::new(&c, &opts).unwrap();
    let exchange = p.exchange(c.limits());
    assert_eq!(exchange.body_len(), None);
    assert_eq!(
        String::from_utf8(exchange.head().to_vec()).unwrap(),
        "GET /files/a.jpg?v=2 HTTP/1.1\r\nhost: api.example.com\r\nauthorization: Bearer t\r\n\
         referer: https://urlhost/2021001/1.2.3/page-frame.html\r\n\r\n"
    );
}

#[test]
fn download_success_paths_and_progress() {
    let c = ctx();
    let mut flow = download_in(&c, &download_url("https://api.example.com/get?id=3")).unwrap();
    let step = flow
        .on_head(
            &c,
            &head(
                200,
                &[("Content-Type", "image/png"), ("Content-Length", "300")],
            ),
        )
        .unwrap();
    let DownloadStep::Save(save) = step else {
        panic!("{step:?}")
    };
    assert_eq!(save.content_length(), Some(300));
    assert_eq!(save.content_type(), Some("image/png"));
    let (temp, done) = save.paths(0xabc);
    assert_eq!(
        temp,
        PathBuf::from("/srv/app/tmp/.mpnet-0000000000000abc.part")
    );
    assert_eq!(
        done,
        PathBuf::from("/srv/app/tmp/mpnet-0000000000000abc.png")
    );
    let mut progress = save.progress();
    assert_eq!(progress.expected(), 300);
    assert_eq!(progress.advance(300).unwrap().progress, 100);
    let result = flow.finish(done);
    assert_eq!(
        serde_json::to_string(&result).unwrap(),
        r#"{"apFilePath":"/srv/app/tmp/mpnet-0000000000000abc.png"}"#
    );

    // Chunked (no Content-Length): progress unknown until the end.
    let mut flow = download_in(&c, &download_url("https://api.example.com/f")).unwrap();
    let DownloadStep::Save(save) = flow
        .on_head(&c, &head(200, &[("Transfer-Encoding", "chunked")]))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(save.content_length(), None);
    let mut p = save.progress();
    assert_eq!(p.advance(10).unwrap().total_bytes_expected_to_write, 0);
    assert_eq!(p.finish().unwrap().total_bytes_expected_to_write, 10);
    assert_eq!(
        save.paths(1).1,
        PathBuf::from("/srv/app/tmp/mpnet-0000000000000001")
    );
}

#[test]
fn download_status_errors_are_12() {
    let c = ctx();
    for status in [200, 304, 400, 404, 429, 500, 101, 302] {
        let mut flow = download_in(&c, &download_url("https://api.example.com/a.zip")).unwrap();
        let r = flow.on_head(&c, &head(status, &[("X-Why", "no")]));
        if (200..300).contains(&status) {
            assert!(matches!(r, Ok(DownloadStep::Save(_))));
            continue;
        }
        let e = r.unwrap_err();
        assert_eq!(e.code(Api::Download), 12, "{status}");
        let json = serde_json::to_value(e.to_js(Api::Download)).unwrap();
        assert_eq!(json["error"], 12);
        assert_eq!(json["status"], status);
        assert_eq!(json["headers"]["X-Why"], "no");
    }
}

#[test]
fn download_redirects() {
    let c = ctx();
    let opts = download_options(
        r#"{"url":"https://api.example.com/report.pdf","header":{"Authorization":"t","Cookie":"c","X-Keep":"k"}}"#,
    )
    .unwrap();
    let mut flow = DownloadFlow::new(&c, &opts, Instant::now()).unwrap();
    // Same origin: headers kept.
    let step = flow
        .on_head(
            &c,
            &head(301, &[("Location", "/v2/report"), ("Content-Length", "0")]),
        )
        .unwrap();
    assert_eq!(step, DownloadStep::Redirect { drain: true });
    assert_eq!(flow.request().target().path(), "/v2/report");
    assert!(flow.request().headers().contains_key("authorization"));
    // Another origin: Authorization and Cookie dropped.
    let step = flow
        .on_head(
            &c,
            &head(302, &[("Location", "https://dl.cdn.example.com/blob/123")]),
        )
        .unwrap();
    assert_eq!(step, DownloadStep::Redirect { drain: false });
    let h = flow.request().headers();
    assert!(!h.contains_key("authorization") && !h.contains_key("cookie"));
    assert_eq!(h["x-keep"], "k");
    assert_eq!(flow.redirects(), 2);
    let DownloadStep::Save(save) = flow
        .on_head(
            &c,
            &head(200, &[("Content-Type", "application/octet-stream")]),
        )
        .unwrap()
    else {
        panic!()
    };
    // The extension of the URL the caller gave wins.
    assert!(save.paths(5).1.to_string_lossy().ends_with(".pdf"));

    // Hops are checked like the first URL.
    let hop = |location: &str| {
        let mut flow = download_in(&c, &download_url("https://api.example.com/a")).unwrap();
        flow.on_head(&c, &head(307, &[("Location", location)]))
            .map(|_| flow.request().target().to_string())
            .map_err(|e| e.code(Api::Download))
    };
    assert_eq!(hop("http://api.example.com/a"), Err(20));
    assert_eq!(hop("ftp://api.example.com/a"), Err(20));
    assert_eq!(hop("https://evil.example.org/a"), Err(13));
    assert_eq!(hop("https://[::1"), Err(12));
    assert_eq!(
        hop("https://x.cdn.example.com/b.jpg"),
        Ok("https://x.cdn.example.com/b.jpg".to_string())
    );

    // Extension from the final URL when the first has none.
    let mut flow = download_in(&c, &download_url("https://api.example.com/get?id=1")).unwrap();
    flow.on_head(
        &c,
        &head(303, &[("Location", "https://api.example.com/files/x.mp3")]),
    )
    .unwrap();
    let DownloadStep::Save(save) = flow.on_head(&c, &head(200, &[])).unwrap() else {
        panic!()
    };
    assert!(save.paths(5).1.to_string_lossy().ends_with(".mp3"));

    // More than max_redirects: 12.
    let mut flow = download_in(&c, &download_url("https://api.example.com/loop")).unwrap();
    let max = c.limits().max_redirects;
    for _ in 0..max {
        flow.on_head(&c, &head(302, &[("Location", "/loop")]))
            .unwrap();
    }
    let e = flow
        .on_head(&c, &head(302, &[("Location", "/loop")]))
        .unwrap_err();
    assert_eq!(e.code(Api::Download), 12);
}

#[test]
fn download_deadline() {
    let c = ctx();
    let start = Instant::now();
    let opts = download_options(r#"{"url":"https://api.example.com/a","timeout":1500}"#).unwrap();
    let flow = DownloadFlow::new(&c, &opts, start).unwrap();
    assert_eq!(flow.poll_timeout(), start + Duration::from_millis(1500));
    assert!(flow
        .handle_timeout(start + Duration::from_millis(1499))
        .is_ok());
    let e = flow
        .handle_timeout(start + Duration::from_millis(1500))
        .unwrap_err();
    assert_eq!(e.code(Api::Download), 12);
    assert_eq!(
        mpnet_core::transfer::download::aborted().code(Api::Download),
        12
    );
    let io = std::io::Error::other("disk full");
    assert_eq!(
        mpnet_core::transfer::download::write_error(&PathBuf::from("/x"), &io).code(Api::Download),
        12
    );
}
