//! Black-box tests of the `mpnet` command (SPEC §9).

use std::process::{Command, Output};

use mpnet_testkit::{HttpsServer, TestCa};
use serde_json::Value;

fn mpnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpnet"))
        .args(args)
        .output()
        .expect("run mpnet")
}

fn json_out(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn encode_prints_the_wire_request() {
    let out = mpnet(&[
        "encode",
        r#"{"url":"https://a.example/p?x=1#f","data":{"b":2,"a":"x y"}}"#,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = json_out(&out);
    assert_eq!(v["method"], "GET");
    assert_eq!(v["url"], "https://a.example/p?x=1&b=2&a=x%20y");
    assert_eq!(v["headers"]["host"], "a.example");
    assert_eq!(
        v["headers"]["referer"],
        "https://urlhost/mpnet-cli/0.0.0/page-frame.html"
    );
    assert_eq!(v["body"], "");
}

#[test]
fn encode_flags_set_identity_and_whitelist() {
    let out = mpnet(&[
        "--app-id",
        "2021",
        "--app-version",
        "9.9",
        "--whitelist",
        "https://a.example",
        "encode",
        r#"{"url":"https://a.example/","method":"post","data":[1,"2"]}"#,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = json_out(&out);
    assert_eq!(
        v["headers"]["referer"],
        "https://urlhost/2021/9.9/page-frame.html"
    );
    assert_eq!(v["body"], "WzEsIjIiXQ==");
    let out = mpnet(&[
        "--whitelist",
        "https://a.example",
        "encode",
        r#"{"url":"https://b.example/"}"#,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_out(&out)["error"], 11);
}

#[test]
fn encode_errors_exit_1_with_the_error_json() {
    for (opts, code) in [
        (r#"{"url":""}"#, 2),
        (
            r#"{"url":"https://a.example/","headers":{"x":"1\r\nevil: 1"}}"#,
            2,
        ),
        (r#"{"url":"https://a.example/?%E4%B8"}"#, 15),
        (r#"{"url":"http://a.example/"}"#, 11),
    ] {
        let out = mpnet(&["encode", opts]);
        assert_eq!(out.status.code(), Some(1), "{opts}");
        let v = json_out(&out);
        assert_eq!(v["error"], code, "{opts}");
        assert!(v["errorMessage"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["encode", "{not json"],
        vec!["encode", "[1]"],
        vec!["frobnicate"],
        vec!["encode", "@/nonexistent/file"],
    ] {
        let out = mpnet(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn options_from_file_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.json");
    std::fs::write(&path, r#"{"url":"https://a.example/f"}"#).unwrap();
    let out = mpnet(&["encode", &format!("@{}", path.display())]);
    assert_eq!(json_out(&out)["url"], "https://a.example/f");

    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpnet"))
        .args(["encode", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"url":"https://a.example/s"}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(json_out(&out)["url"], "https://a.example/s");
}

#[test]
fn request_against_the_test_kit() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    ca.write_pem(&ca_file).unwrap();
    let ca_arg = ca_file.to_str().unwrap();
    let opts = format!(
        r#"{{"url":"{}","method":"POST","data":{{"from":"支付宝","production":"AlipayJSAPI"}},"dataType":"json"}}"#,
        server.url("/post")
    );
    let out = mpnet(&["--ca-file", ca_arg, "request", &opts]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = json_out(&out);
    assert_eq!(v["status"], 200);
    assert_eq!(v["data"]["json"]["from"], "支付宝");
    assert!(v["headers"].is_object());

    let opts = format!(
        r#"{{"url":"{}","dataType":"arraybuffer"}}"#,
        server.url("/bytes/3")
    );
    let v = json_out(&mpnet(&["--ca-file", ca_arg, "request", &opts]));
    assert_eq!(v["isBuffer"], true);
    assert!(v["data"].is_string());

    let opts = format!(r#"{{"url":"{}"}}"#, server.url("/status/404"));
    let out = mpnet(&["--ca-file", ca_arg, "request", &opts]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_out(&out);
    assert_eq!(v["error"], 19);
    assert_eq!(v["status"], 404);

    // Without the CA the certificate is not trusted: 19.
    let opts = format!(r#"{{"url":"{}"}}"#, server.url("/get"));
    let out = mpnet(&["request", &opts]);
    assert_eq!(json_out(&out)["error"], 19);
}
