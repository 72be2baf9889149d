//! A minimal HTTP CONNECT proxy on loopback.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bg::{accept_loop, bind_loopback, Background};

/// Largest CONNECT request head the proxy reads; more gives 431.
const MAX_HEAD: usize = 64 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the proxy tries to reach the target.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a [`ProxyServer`] answers `CONNECT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyMode {
    /// Connects to the requested `host:port`, which must be loopback
    /// (`localhost`, `127.0.0.0/8` or `[::1]`; anything else gets 403),
    /// answers `200 Connection Established` and then relays bytes both ways
    /// until either side closes. A target that refuses gives 502.
    Tunnel,
    /// Answers `407 Proxy Authentication Required` (with
    /// `Proxy-Authenticate: Basic realm="mpnet-testkit"`) and closes.
    Deny407,
    /// Answers `403 Forbidden` and closes.
    Deny403,
}

#[derive(Default)]
struct ProxyStats {
    connections: AtomicU64,
    connects: AtomicU64,
    heads: Mutex<Vec<String>>,
    targets: Mutex<Vec<String>>,
}

/// A minimal HTTP/1.1 `CONNECT` proxy listening on `127.0.0.1` only.
///
/// Each connection carries one `CONNECT` request; any other method gets 405
/// and a malformed head 400, both followed by a close. Stops on
/// [`ProxyServer::shutdown`] or drop, closing every tunnel.
pub struct ProxyServer {
    bg: Background,
    stats: Arc<ProxyStats>,
    mode: ProxyMode,
}

impl std::fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyServer")
            .field("addr", &self.addr())
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ProxyServer {
    /// Starts a proxy in `mode` on an ephemeral loopback port.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start(mode: ProxyMode) -> ProxyServer {
        Self::bind(0, mode).expect("start the loopback proxy")
    }

    /// Starts a proxy in `mode` on `127.0.0.1:port` (0: ephemeral).
    pub fn bind(port: u16, mode: ProxyMode) -> io::Result<ProxyServer> {
        let listener = bind_loopback(port)?;
        let port = listener.local_addr()?.port();
        let stats = Arc::new(ProxyStats::default());
        let st = stats.clone();
        let bg = Background::spawn(&format!("mpnet-testkit-proxy-{port}"), listener, move |l| {
            accept_loop(l, move |tcp, _| {
                st.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(tcp, mode, st.clone()));
            })
        })?;
        Ok(ProxyServer { bg, stats, mode })
    }

    /// `http://127.0.0.1:PORT`, the value for a client's proxy setting.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.bg.addr().port()
    }

    /// The listening address (always `127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.bg.addr()
    }

    /// The mode the proxy was started in.
    pub fn mode(&self) -> ProxyMode {
        self.mode
    }

    /// How many TCP connections were accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// How many well-formed `CONNECT` requests were received so far,
    /// whatever the answer.
    pub fn connect_requests(&self) -> u64 {
        self.stats.connects.load(Ordering::SeqCst)
    }

    /// The request targets (`host:port`) of those `CONNECT` requests, in
    /// order.
    pub fn connect_targets(&self) -> Vec<String> {
        self.stats
            .targets
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// The full request heads (request line and header fields, as text,
    /// without the final empty line) of those `CONNECT` requests, in order.
    pub fn request_heads(&self) -> Vec<String> {
        self.stats
            .heads
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Stops the proxy, closing the listener and every tunnel, then
    /// returns. Calling it again does nothing.
    pub fn shutdown(&mut self) {
        self.bg.stop();
    }
}

async fn answer(tcp: &mut TcpStream, status: &str, extra: &str) {
    let msg = format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = tcp.write_all(msg.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

/// Splits `host:port` / `[v6]:port` and resolves it when it is loopback.
fn loopback_target(authority: &str) -> Option<SocketAddr> {
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse::<IpAddr>().ok()?
    };
    ip.is_loopback().then_some(SocketAddr::new(ip, port))
}

async fn serve(mut tcp: TcpStream, mode: ProxyMode, st: Arc<ProxyStats>) {
    // Read the request head.
    let mut buf = Vec::new();
    let head_len = tokio::time::timeout(HEAD_TIMEOUT, async {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(i + 4);
            }
            if buf.len() > MAX_HEAD {
                return None;
            }
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let head_len = match head_len {
        Ok(Some(n)) => n,
        Ok(None) if buf.len() > MAX_HEAD => {
            return answer(&mut tcp, "431 Request Header Fields Too Large", "").await
        }
        _ => return,
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let (method, target) = match req.parse(&buf[..head_len]) {
        Ok(httparse::Status::Complete(_)) => (
            req.method.unwrap_or("").to_owned(),
            req.path.unwrap_or("").to_owned(),
        ),
        _ => return answer(&mut tcp, "400 Bad Request", "").await,
    };
    if !method.eq_ignore_ascii_case("CONNECT") {
        return answer(&mut tcp, "405 Method Not Allowed", "Allow: CONNECT\r\n").await;
    }
    st.connects.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut t) = st.targets.lock() {
        t.push(target.clone());
    }
    if let Ok(mut h) = st.heads.lock() {
        h.push(String::from_utf8_lossy(&buf[..head_len - 4]).into_owned());
    }
    match mode {
        ProxyMode::Deny407 => {
            answer(
                &mut tcp,
                "407 Proxy Authentication Required",
                "Proxy-Authenticate: Basic realm=\"mpnet-testkit\"\r\n",
            )
            .await
        }
        ProxyMode::Deny403 => answer(&mut tcp, "403 Forbidden", "").await,
        ProxyMode::Tunnel => {
            let Some(addr) = loopback_target(&target) else {
                return answer(&mut tcp, "403 Forbidden", "").await;
            };
            let upstream =
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                    Ok(Ok(s)) => s,
                    _ => return answer(&mut tcp, "502 Bad Gateway", "").await,
                };
            let _ = upstream.set_nodelay(true);
            let mut upstream = upstream;
            if tcp
                .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            // Bytes the client sent right after its head belong to the
            // tunnel.
            if buf.len() > head_len && upstream.write_all(&buf[head_len..]).await.is_err() {
                return;
            }
            let _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(loopback_target("127.0.0.1:443").is_some());
        assert!(loopback_target("127.1.2.3:1").is_some());
        assert!(loopback_target("localhost:8443").is_some());
        assert!(loopback_target("[::1]:443").is_some());
        assert!(loopback_target("example.com:443").is_none());
        assert!(loopback_target("10.0.0.1:443").is_none());
        assert!(loopback_target("127.0.0.1").is_none());
    }
}
