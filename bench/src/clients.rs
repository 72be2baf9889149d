//! How each client under test is set up. Every client trusts only the
//! server's test CA, uses no proxy, speaks HTTP/1.1 over rustls with the
//! *ring* provider, and keeps enough idle connections for the concurrent
//! scenarios (a pool smaller than the thread count would measure TLS
//! handshakes, not keep-alive).

use std::path::Path;
use std::sync::Arc;

use mpnet_core::pool::PoolConfig;
use mpnet_core::AppContext;

use crate::server::Server;

/// Idle connections kept per origin by every client in the benchmarks.
pub const POOL_PER_HOST: usize = 64;

/// The mpnet app context for `server`: whitelisted origin, the test CA as
/// the only root, `max_in_flight` requests at once, `dir` as the read and
/// temp folder.
pub fn mpnet_ctx(server: &Server, max_in_flight: usize, dir: &Path) -> Result<AppContext, String> {
    AppContext::builder("2021000000000000", "1.0.0")
        .whitelist([server.origin()])
        .map_err(|e| e.to_string())?
        .use_web_pki_roots(false)
        .add_root_der(server.ca().cert_der().to_vec())
        .max_in_flight(max_in_flight)
        .read_dir(dir)
        .temp_dir(dir)
        .build()
        .map_err(|e| e.to_string())
}

/// mpnet's pool with room for the concurrent scenarios.
pub fn mpnet_pool() -> PoolConfig {
    PoolConfig {
        max_idle_per_origin: POOL_PER_HOST,
        max_idle: POOL_PER_HOST,
        ..PoolConfig::default()
    }
}

/// A pool that keeps nothing: every request opens a new connection.
pub fn no_pool() -> PoolConfig {
    PoolConfig {
        max_idle_per_origin: 0,
        max_idle: 0,
        ..PoolConfig::default()
    }
}

/// An mpnet-blocking client for `server`.
pub fn mpnet_blocking(
    server: &Server,
    pool: PoolConfig,
    max_in_flight: usize,
    dir: &Path,
) -> Result<mpnet_blocking::Client, String> {
    mpnet_blocking::Client::with_pool(mpnet_ctx(server, max_in_flight, dir)?, pool)
        .map_err(|e| e.to_string())
}

/// An mpnet-smol client for `server`.
#[cfg(feature = "smol")]
pub fn mpnet_smol(
    server: &Server,
    pool: PoolConfig,
    max_in_flight: usize,
    dir: &Path,
) -> Result<mpnet_smol::Client, String> {
    mpnet_smol::Client::with_pool(mpnet_ctx(server, max_in_flight, dir)?, pool)
        .map_err(|e| e.to_string())
}

/// A ureq 3 agent (rustls + ring) trusting the test CA; `pool` idle
/// connections per host (0: a new connection each request).
pub fn ureq_agent(server: &Server, pool: usize) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let der = server.ca().cert_der();
    let roots = RootCerts::Specific(Arc::new(vec![Certificate::from_der(&der).to_owned()]));
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(roots)
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .proxy(None)
        .max_idle_connections(pool.max(1) * 2)
        .max_idle_connections_per_host(pool)
        // No timeout: with one set, ureq resolves every request's host on a
        // new thread (even an IP literal), which would measure thread spawns.
        .build()
        .into()
}

/// A reqwest client (rustls + ring, HTTP/1.1 only, no default features)
/// trusting the test CA; `pool` idle connections per host.
pub fn reqwest_client(server: &Server, pool: usize) -> Result<reqwest::Client, String> {
    let cert =
        reqwest::Certificate::from_der(&server.ca().cert_der()).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert)
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(pool)
        .build()
        .map_err(|e| e.to_string())
}

/// A reqwest client from a CA file (for child processes).
pub fn reqwest_from_pem(ca_pem: &Path) -> Result<reqwest::Client, String> {
    let pem = std::fs::read(ca_pem).map_err(|e| e.to_string())?;
    let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert)
        .no_proxy()
        .http1_only()
        .build()
        .map_err(|e| e.to_string())
}

/// An mpnet-blocking client from an origin and a CA file (for child
/// processes).
pub fn mpnet_from_pem(
    origin: &str,
    ca_pem: &Path,
    dir: &Path,
) -> Result<mpnet_blocking::Client, String> {
    mpnet_blocking::Client::new(ctx_from_pem(origin, ca_pem, dir)?).map_err(|e| e.to_string())
}

/// [`mpnet_from_pem`] for mpnet-smol.
#[cfg(feature = "smol")]
pub fn mpnet_smol_from_pem(
    origin: &str,
    ca_pem: &Path,
    dir: &Path,
) -> Result<mpnet_smol::Client, String> {
    mpnet_smol::Client::new(ctx_from_pem(origin, ca_pem, dir)?).map_err(|e| e.to_string())
}

/// An app context for `origin` trusting the CA in `ca_pem`, with `dir` as
/// its file sandbox.
fn ctx_from_pem(origin: &str, ca_pem: &Path, dir: &Path) -> Result<AppContext, String> {
    let pem = std::fs::read_to_string(ca_pem).map_err(|e| e.to_string())?;
    AppContext::builder("2021000000000000", "1.0.0")
        .whitelist([origin])
        .map_err(|e| e.to_string())?
        .use_web_pki_roots(false)
        .add_roots_pem(&pem)
        .map_err(|e| e.to_string())?
        .read_dir(dir)
        .temp_dir(dir)
        .build()
        .map_err(|e| e.to_string())
}

/// A single-threaded tokio runtime for reqwest (its connection tasks run on
/// the same thread, as mpnet-smol's futures do under `smol::block_on`).
pub fn tokio_current_thread() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}
