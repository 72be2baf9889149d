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

/// `mpnet` with `input` as its whole stdin (written, then closed).
fn mpnet_with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpnet"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mpnet");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("mpnet's output")
}

/// `mpnet --transport T --ca-file CA socket OPTS` with `script`'s lines as
/// its whole stdin: its exit and its stdout's JSON lines.
fn socket_session(
    transport: &str,
    ca_arg: &str,
    opts: &str,
    script: &[&str],
) -> (Output, Vec<Value>) {
    let mut input = script.join("\n");
    input.push('\n');
    let out = mpnet_with_stdin(
        &[
            "--transport",
            transport,
            "--ca-file",
            ca_arg,
            "socket",
            opts,
        ],
        input.as_bytes(),
    );
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    (out, lines)
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
        // stdin carries a socket's commands, not its options.
        vec!["socket", "-"],
        vec![
            "--read-dir",
            "/nonexistent/folder",
            "encode",
            r#"{"url":"https://a.example/"}"#,
        ],
        vec![
            "--proxy",
            "http://",
            "encode",
            r#"{"url":"https://a.example/"}"#,
        ],
    ] {
        let out = mpnet(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
    let out = mpnet(&[
        "--read-dir",
        "/nonexistent/folder",
        "encode",
        r#"{"url":"https://a.example/"}"#,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a folder"), "{stderr}");
    let out = mpnet(&[
        "--proxy",
        "http://",
        "encode",
        r#"{"url":"https://a.example/"}"#,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot be parsed"), "{stderr}");
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

fn ca_file(ca: &TestCa, dir: &std::path::Path) -> String {
    let path = dir.join("ca.pem");
    ca.write_pem(&path).unwrap();
    path.to_str().unwrap().to_string()
}

/// A loopback HTTPS+WSS server with a CA made now, a temporary folder, and
/// the CA's PEM file in it (`ca_arg`, for `--ca-file`).
struct Kit {
    _ca: TestCa,
    server: HttpsServer,
    dir: tempfile::TempDir,
    ca_arg: String,
}

fn kit() -> Kit {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca);
    let dir = tempfile::tempdir().unwrap();
    let ca_arg = ca_file(&ca, dir.path());
    Kit {
        _ca: ca,
        server,
        dir,
        ca_arg,
    }
}

/// Sends SIGTERM to `child`.
#[cfg(unix)]
fn sigterm(child: &std::process::Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
}

#[test]
fn upload_and_download_through_the_command() {
    let Kit {
        _ca,
        server,
        dir,
        ca_arg,
    } = kit();
    let files = dir.path().join("files");
    let temp = dir.path().join("temp");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("a.txt"), "hello").unwrap();
    let opts = format!(
        r#"{{"url":"{}","filePath":"a.txt","fileName":"f","formData":{{"k":"v"}}}}"#,
        server.url("/upload")
    );
    let out = mpnet(&[
        "--ca-file",
        &ca_arg,
        "--read-dir",
        files.to_str().unwrap(),
        "upload",
        &opts,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = json_out(&out);
    assert_eq!(v["statusCode"], "200");
    let echo: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
    assert_eq!(echo["form"]["k"], "v");
    assert_eq!(echo["files"]["f"]["size"], 5);
    // Not in the read folder: 13. Missing: 11.
    let opts = format!(
        r#"{{"url":"{}","filePath":"/etc/passwd","fileName":"f"}}"#,
        server.url("/upload")
    );
    let out = mpnet(&[
        "--ca-file",
        &ca_arg,
        "--read-dir",
        files.to_str().unwrap(),
        "upload",
        &opts,
    ]);
    assert_eq!(json_out(&out)["error"], 13);
    let opts = format!(
        r#"{{"url":"{}","filePath":"nope.txt","fileName":"f"}}"#,
        server.url("/upload")
    );
    let out = mpnet(&[
        "--ca-file",
        &ca_arg,
        "--read-dir",
        files.to_str().unwrap(),
        "upload",
        &opts,
    ]);
    assert_eq!(json_out(&out)["error"], 11);

    let opts = format!(
        r#"{{"url":"{}"}}"#,
        server.url("/download/report.pdf?size=5000")
    );
    let out = mpnet(&[
        "--ca-file",
        &ca_arg,
        "--temp-dir",
        temp.to_str().unwrap(),
        "download",
        &opts,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let path = json_out(&out)["apFilePath"].as_str().unwrap().to_string();
    assert!(
        path.ends_with(".pdf") && path.starts_with(temp.to_str().unwrap()),
        "{path}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        mpnet_testkit::download_content("report.pdf", 5000)
    );
    let out = mpnet(&[
        "--ca-file",
        &ca_arg,
        "--temp-dir",
        temp.to_str().unwrap(),
        "download",
        r#"{"url":"http://example.com/x"}"#,
    ]);
    assert_eq!(json_out(&out)["error"], 20);
}

/// A full disk, made real with a file-size limit: the write fails (EFBIG),
/// the download is 12, and no file is left behind (SPEC §6).
#[cfg(unix)]
#[test]
fn download_to_a_full_disk_is_12_and_leaves_nothing() {
    let Kit {
        _ca,
        server,
        dir,
        ca_arg,
    } = kit();
    let temp = dir.path().join("temp");
    std::fs::create_dir_all(&temp).unwrap();
    let opts = format!(r#"{{"url":"{}"}}"#, server.url("/bytes/2000000"));
    // ulimit -f counts 1024-byte blocks; SIGXFSZ ignored so write() fails.
    let script = format!(
        "trap '' XFSZ; ulimit -f 500; exec '{}' --ca-file '{}' --temp-dir '{}' download '{}'",
        env!("CARGO_BIN_EXE_mpnet"),
        ca_arg,
        temp.display(),
        opts
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_out(&out);
    assert_eq!(v["error"], 12, "{v}");
    let left: Vec<_> = std::fs::read_dir(&temp).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn request_on_both_transports_gives_the_same_json() {
    let Kit {
        _ca,
        server,
        dir: _dir,
        ca_arg,
    } = kit();
    for (opts, code) in [
        (
            format!(
                r#"{{"url":"{}","dataType":"text"}}"#,
                server.url("/bytes/5?seed=1")
            ),
            None,
        ),
        (
            format!(r#"{{"url":"{}"}}"#, server.url("/status/418")),
            Some(19),
        ),
        (
            format!(r#"{{"url":"{}","timeout":300}}"#, server.url("/delay/2")),
            Some(13),
        ),
    ] {
        let mut outs = Vec::new();
        for transport in ["blocking", "smol"] {
            let out = mpnet(&[
                "--transport",
                transport,
                "--ca-file",
                &ca_arg,
                "request",
                &opts,
            ]);
            let mut v = json_out(&out);
            if let Some(h) = v.get_mut("headers") {
                h.as_object_mut().unwrap().remove("date");
            }
            outs.push((out.status.code(), v));
        }
        assert_eq!(outs[0].0, outs[1].0, "{opts}");
        match code {
            Some(c) => {
                assert_eq!(outs[0].1["error"], c);
                assert_eq!(outs[1].1["error"], c);
            }
            None => assert_eq!(outs[0].1, outs[1].1, "{opts}"),
        }
    }
}

/// The main job (issue 7): the tour runs every seed API on both transports
/// and exits 0 only when each step gave what the SPEC says.
#[test]
fn the_tour_passes_on_both_transports() {
    let out = mpnet(&["tour"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for api in [
        "my.request(",
        "task.abort()",
        "my.uploadFile(",
        "my.downloadFile(",
        "my.connectSocket(",
        "onSocketMessage",
        "onSocketClose",
    ] {
        assert!(text.contains(api), "the tour does not show {api}");
    }
    assert!(
        text.contains("blocking transport: 13 of 13 steps"),
        "{text}"
    );
    assert!(text.contains("smol transport: 13 of 13 steps"), "{text}");
    assert!(!text.contains('✗'));
}

#[test]
fn socket_command_speaks_json_lines_on_both_transports() {
    let Kit {
        _ca,
        server,
        dir: _dir,
        ca_arg,
    } = kit();
    for transport in ["blocking", "smol"] {
        let opts = format!(r#"{{"url":"{}"}}"#, server.ws_url("/ws"));
        let (out, lines) = socket_session(
            transport,
            &ca_arg,
            &opts,
            &[
                r#"{"send": {"data": "你好 😀", "isBuffer": false}}"#,
                r#"{"send": {"data": "AAE=", "isBuffer": true}}"#,
                r#"{"send": {"data": "%%", "isBuffer": true}}"#,
                // The two echoes arrive before the close.
                r#"{"wait": {"messages": 2}}"#,
                r#"{"close": {"code": 4000, "reason": "done"}}"#,
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{transport}");
        // The sendFail answers its command at once; the echoes come when
        // they come: compare the socket's own events apart from it.
        let (fails, events): (Vec<&Value>, Vec<&Value>) =
            lines.iter().partition(|l| l["event"] == "sendFail");
        let want = vec![
            serde_json::json!({"event": "open"}),
            serde_json::json!({"event": "message", "data": "你好 😀", "isBuffer": false}),
            serde_json::json!({"event": "message", "data": "AAE=", "isBuffer": true}),
            serde_json::json!({"event": "close", "code": 4000, "reason": "done"}),
        ];
        assert_eq!(
            events.into_iter().cloned().collect::<Vec<_>>(),
            want,
            "{transport}: {lines:?}"
        );
        assert_eq!(fails.len(), 1, "{transport}");
        assert_eq!(fails[0]["error"], 11);
        // A failed connect prints a fail line and exits 1.
        let out = mpnet(&[
            "--transport",
            transport,
            "socket",
            r#"{"url":"wss://127.0.0.1:1/x"}"#,
        ]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(json_out(&out)["event"], "fail");
    }
}

/// `mpnet serve` prints its URLs and CA file, serves, and on SIGTERM
/// removes the CA file's folder and exits with 0.
#[cfg(unix)]
#[test]
fn serve_cleans_up_its_ca_folder_when_stopped() {
    use std::io::BufRead;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let mut child = Command::new(env!("CARGO_BIN_EXE_mpnet"))
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run mpnet serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the JSON line");
    let v: Value = serde_json::from_str(&line).expect("JSON");
    let ca = std::path::PathBuf::from(v["caFile"].as_str().expect("caFile"));
    let dir = ca.parent().expect("a folder").to_path_buf();
    assert!(ca.is_file(), "{} missing while serving", ca.display());
    let url = v["https"].as_str().expect("https");
    let out = mpnet(&[
        "--ca-file",
        ca.to_str().expect("UTF-8 path"),
        "--whitelist",
        url,
        "request",
        &format!(r#"{{"url":"{url}/get"}}"#),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    sigterm(&child);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "mpnet serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// `"multiple": true` gives a socket task; the command listens on the task
/// itself, so the session works the same as with the app socket.
#[test]
fn socket_command_with_multiple_true_on_both_transports() {
    let Kit {
        _ca,
        server,
        dir: _dir,
        ca_arg,
    } = kit();
    for transport in ["blocking", "smol"] {
        let opts = format!(r#"{{"url":"{}","multiple":true}}"#, server.ws_url("/ws"));
        let (out, lines) = socket_session(
            transport,
            &ca_arg,
            &opts,
            &[
                r#"{"send": {"data": "one"}}"#,
                r#"{"wait": {}}"#,
                r#"{"close": {}}"#,
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{transport}");
        assert_eq!(
            lines,
            vec![
                serde_json::json!({"event": "open"}),
                serde_json::json!({"event": "message", "data": "one", "isBuffer": false}),
                serde_json::json!({"event": "close", "code": 1000, "reason": ""}),
            ],
            "{transport}"
        );
    }
}

/// A script piped in whole: `wait` holds the commands after it until the
/// messages it asks for have come (those that came before it count), so
/// the answers are printed before stdin's end closes the socket; a wait
/// that times out says how many came; a bad wait is ignored with a note.
#[test]
fn socket_command_waits_for_messages_on_both_transports() {
    let Kit {
        _ca,
        server,
        dir: _dir,
        ca_arg,
    } = kit();
    for transport in ["blocking", "smol"] {
        let opts = format!(r#"{{"url":"{}"}}"#, server.ws_url("/ws"));
        let (out, lines) = socket_session(
            transport,
            &ca_arg,
            &opts,
            &[
                r#"{"send": {"data": "one"}}"#,
                r#"{"send": {"data": "two"}}"#,
                r#"{"wait": {"messages": 2}}"#,
                r#"{"wait": {"messages": 0}}"#,
                r#"{"send": {"data": "three"}}"#,
                r#"{"wait": {"messages": 2, "timeout": 300}}"#,
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{transport}: {out:?}");
        assert_eq!(
            lines,
            vec![
                serde_json::json!({"event": "open"}),
                serde_json::json!({"event": "message", "data": "one", "isBuffer": false}),
                serde_json::json!({"event": "message", "data": "two", "isBuffer": false}),
                serde_json::json!({"event": "message", "data": "three", "isBuffer": false}),
                serde_json::json!({"event": "waitTimeout", "expected": 2, "received": 1}),
                serde_json::json!({"event": "close", "code": 1000, "reason": ""}),
            ],
            "{transport}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("positive integer"), "{transport}: {err}");
    }
}

/// Options the API refuses are the connect's `fail` event (exit 1); text
/// that is not a JSON object is a usage error (exit 2).
#[test]
fn socket_option_errors_are_a_fail_event() {
    for transport in ["blocking", "smol"] {
        let out = mpnet(&[
            "--transport",
            transport,
            "socket",
            r#"{"url":"wss://a.example/x","protocols":5}"#,
        ]);
        assert_eq!(out.status.code(), Some(1), "{transport}: {out:?}");
        let v = json_out(&out);
        assert_eq!(v["event"], "fail", "{transport}: {v}");
        assert_eq!(v["error"], 2, "{transport}: {v}");
        assert!(
            v["errorMessage"].as_str().unwrap().contains("protocols"),
            "{transport}: {v}"
        );
        let out = mpnet(&["--transport", transport, "socket", "[1]"]);
        assert_eq!(out.status.code(), Some(2), "{transport}: {out:?}");
        assert!(out.stdout.is_empty(), "{transport}: {out:?}");
    }
}

/// A reader that goes away early (`mpnet ... | head -c0`) is not a crash.
#[cfg(unix)]
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let script = format!(
        "set -o pipefail; (sleep 0.3; exec '{}' encode '{{\"url\":\"https://a.example/\"}}') | true",
        env!("CARGO_BIN_EXE_mpnet")
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A port in use is a usage error, and the CA folder is never made.
#[test]
fn serve_on_a_port_in_use_fails_and_leaves_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_mpnet"))
        .args(["serve", "--port", &port])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen"), "{stderr}");
    let dir = std::env::temp_dir().join(format!("mpnet-serve-{pid}"));
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// SIGTERM during a download aborts it: the unfinished file is removed
/// before the command prints the abort (12) and exits 130 (SPEC §6).
#[cfg(unix)]
#[test]
fn a_stop_signal_aborts_a_download_and_leaves_nothing() {
    use std::time::{Duration, Instant};
    let Kit {
        _ca,
        server,
        dir,
        ca_arg,
    } = kit();
    let temp = dir.path().join("temp");
    std::fs::create_dir_all(&temp).unwrap();
    for transport in ["blocking", "smol"] {
        let opts = format!(
            r#"{{"url":"{}"}}"#,
            server.url("/download/slow.bin?size=1000000&chunk_size=1000&chunk_delay_ms=50")
        );
        let child = Command::new(env!("CARGO_BIN_EXE_mpnet"))
            .args([
                "--transport",
                transport,
                "--ca-file",
                &ca_arg,
                "--temp-dir",
                temp.to_str().unwrap(),
                "download",
                &opts,
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Under way: the unfinished file exists.
        let started = Instant::now();
        while std::fs::read_dir(&temp).unwrap().next().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{transport}: the download never started writing"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        sigterm(&child);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{transport}: {out:?}");
        let v = json_out(&out);
        assert_eq!(v["error"], 12, "{transport}: {v}");
        let left: Vec<_> = std::fs::read_dir(&temp).unwrap().collect();
        assert!(left.is_empty(), "{transport}: left {left:?}");
    }
}

/// Results print as `JSON.stringify` would in the mini-program (SPEC §8):
/// `100`, not `100.0`; `0` for `-0`; integer-like keys first.
#[test]
fn results_print_as_javascript_would() {
    let Kit {
        _ca,
        server,
        dir: _dir,
        ca_arg,
    } = kit();
    let opts = format!(
        r#"{{"url":"{}","method":"POST","header":{{"content-type":"application/json"}},"data":"{{\"b\":1,\"2\":-0,\"n\":100.0,\"e\":1e2,\"f\":0.5}}"}}"#,
        server.url("/post")
    );
    let out = mpnet(&["--ca-file", &ca_arg, "request", &opts]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(r#""json":{"2":0,"b":1,"n":100,"e":100,"f":0.5}"#),
        "{text}"
    );
}
