//! TLS settings and TLS error classification, shared by every transport.
//!
//! rustls is itself sans-IO, so the trust decisions of SPEC §3 (web PKI roots
//! plus the app's extra CAs; nothing disables verification) are made here
//! once. Transports only wrap their sockets with the connection this gives.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::context::ContextError;
use crate::target::{Host, Target};
use crate::{AppContext, Error, ErrorKind};

/// Where TLS takes the time (certificate validity, session-ticket ages)
/// and its randomness (ClientHello random, session IDs) from. The core
/// reads no clock and draws no random number itself (SPEC §2): the
/// transport passes these in, and a host may pass its own (a simulator's
/// clock, to test certificates that expire). *ring* draws the key-exchange
/// share from the operating system's generator itself; no rustls setting
/// replaces that.
#[derive(Debug, Clone)]
pub struct TlsSources {
    /// The wall clock.
    pub time: Arc<dyn rustls::time_provider::TimeProvider>,
    /// A cryptographically secure generator.
    pub random: &'static dyn rustls::crypto::SecureRandom,
}

impl TlsSources {
    /// The system clock and the operating system's generator (through
    /// *ring*). Only handles are made here: they are read when rustls
    /// needs them.
    pub fn system() -> Self {
        TlsSources {
            time: Arc::new(rustls::time_provider::DefaultTimeProvider),
            random: rustls::crypto::ring::default_provider().secure_random,
        }
    }
}

/// The rustls client settings for `ctx`: web PKI roots (unless the host
/// turned them off) plus its extra CAs, ALPN `http/1.1`, session resumption
/// on, the clock and randomness of `sources`. Build once per client and
/// share.
pub fn client_config(
    ctx: &AppContext,
    sources: &TlsSources,
) -> Result<Arc<ClientConfig>, ContextError> {
    let mut roots = RootCertStore::empty();
    if ctx.use_web_pki_roots() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for der in ctx.extra_roots_der() {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| ContextError(format!("extra CA certificate refused: {e}")))?;
    }
    // AES-128-GCM with SHA-256 first (as browsers order them): its
    // transcript hash and HKDF use SHA-256, which has hardware support, and
    // its bulk cipher runs 10 AES rounds instead of 14. The default order
    // puts AES-256-GCM-SHA384 first.
    let mut provider = rustls::crypto::ring::default_provider();
    provider.secure_random = sources.random;
    provider
        .cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let provider = Arc::new(provider);
    let mut config = ClientConfig::builder_with_details(provider, sources.time.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ContextError(format!("TLS settings: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // TLS 1.3 traffic is sealed and opened by mpnet's own record layer
    // with the secrets rustls derives (`tls_record`): no allocation per
    // record. The secrets never leave the session.
    config.enable_secret_extraction = true;
    Ok(Arc::new(config))
}

/// The same settings with ALPN for WebSocket (no ALPN: servers must answer
/// HTTP/1.1 for the upgrade).
pub fn websocket_config(http: &Arc<ClientConfig>) -> Arc<ClientConfig> {
    let mut config = (**http).clone();
    config.alpn_protocols.clear();
    Arc::new(config)
}

/// The TLS server name (SNI and certificate check) for `target`: its
/// normalised host, the same one the policy checked.
pub fn server_name(target: &Target) -> Result<ServerName<'static>, Error> {
    match target.host() {
        Host::Ipv4(a) => Ok(ServerName::IpAddress(std::net::IpAddr::V4(*a).into())),
        Host::Ipv6(a) => Ok(ServerName::IpAddress(std::net::IpAddr::V6(*a).into())),
        Host::Domain(d) => ServerName::try_from(d.to_string()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidUrl,
                format!("{d:?} is not a valid TLS server name"),
            )
        }),
    }
}

/// The error for a failed TLS handshake or record (SPEC §4: 19, §7: 7).
pub fn tls_error(e: &rustls::Error) -> Error {
    let what = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            rustls::CertificateError::UnknownIssuer => {
                "certificate not trusted (unknown issuer)".to_string()
            }
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. } => {
                "certificate expired".to_string()
            }
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. } => {
                "certificate is for another host".to_string()
            }
            other => format!("invalid certificate: {other:?}"),
        },
        other => other.to_string(),
    };
    Error::new(ErrorKind::Tls, format!("TLS failed: {what}"))
}

/// The socket error for a TLS failure (SPEC §7): a certificate that is not
/// valid is 7 ([`tls_error`]); any other TLS failure (a refused handshake, a
/// record that does not decrypt) is 1, unknown failure, as the SPEC's table
/// gives 7 to certificates alone.
pub fn socket_tls_error(e: &rustls::Error) -> Error {
    match e {
        rustls::Error::InvalidCertificate(_) => tls_error(e),
        other => Error::new(ErrorKind::Unknown, format!("TLS failed: {other}")),
    }
}

/// The socket error (SPEC §7) for an I/O error while `doing` something
/// before the socket is open: a TLS failure inside as
/// [`socket_tls_error`], anything else 1 (unknown failure). Timeouts are
/// the caller's to turn into 6 first: only it knows the connect deadline.
pub fn socket_io_error(e: &std::io::Error, doing: &str) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => socket_tls_error(tls),
        None => Error::new(ErrorKind::Unknown, format!("{doing}: {e}")),
    }
}

/// Classifies an I/O error from a connection: a TLS error carried inside
/// (rustls reports through `io::Error`) is [`ErrorKind::Tls`], a timeout is
/// [`ErrorKind::Timeout`], everything else [`ErrorKind::Network`].
pub fn io_error(e: &std::io::Error, doing: &str) -> Error {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return tls_error(tls);
    }
    let kind = match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => ErrorKind::Timeout,
        _ => ErrorKind::Network,
    };
    Error::new(kind, format!("{doing}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Api;

    #[test]
    fn socket_codes_give_7_to_certificates_alone() {
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert_eq!(socket_tls_error(&cert).code(Api::Socket), 7);
        assert_eq!(tls_error(&cert).code(Api::Request), 19);
        let record = rustls::Error::DecryptError;
        let e = socket_tls_error(&record);
        assert_eq!(e.code(Api::Socket), 1);
        assert!(e.message().starts_with("TLS failed: "), "{}", e.message());
        // The same through the io::Error rustls reports with.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, record);
        assert_eq!(socket_io_error(&io, "reading").code(Api::Socket), 1);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, cert);
        assert_eq!(socket_io_error(&io, "reading").code(Api::Socket), 7);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let e = socket_io_error(&reset, "reading the handshake");
        assert_eq!(e.code(Api::Socket), 1);
        assert!(
            e.message().starts_with("reading the handshake: "),
            "{}",
            e.message()
        );
    }
}
