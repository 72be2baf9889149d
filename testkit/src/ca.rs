//! A test certificate authority generated at run time, and the leaf
//! certificates the kit's TLS servers present.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The names every valid leaf of the kit covers: the loopback host name and
/// both loopback addresses (as IP-address SANs).
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The only name a [`LeafKind::WrongHost`] leaf covers.
pub const WRONG_HOST: &str = "wrong.example";

/// The rustls crypto provider the kit uses everywhere: *ring*.
///
/// The kit never relies on a process-wide default provider, so it works
/// whatever other crates in the same test binary install.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which leaf certificate a TLS server of the kit presents.
///
/// Every kind but [`LeafKind::Valid`] exists to make a correct client fail
/// certificate verification (error 19 for `my.request`, 7 for sockets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeafKind {
    /// Issued by the [`TestCa`] for [`LOOPBACK_NAMES`], valid from
    /// 2020-01-01 to 2100-01-01: a client trusting the CA accepts it.
    Valid,
    /// Issued by the [`TestCa`] for [`LOOPBACK_NAMES`], but valid only from
    /// 2000-01-01 to 2001-01-01.
    Expired,
    /// Issued by the [`TestCa`], valid in time, but only for
    /// [`WRONG_HOST`] (no loopback name or address).
    WrongHost,
    /// For [`LOOPBACK_NAMES`] and valid in time, but issued by a second CA
    /// that nobody trusts (see [`TestCa::untrusted_ca`]).
    Untrusted,
}

/// A test certificate authority: a self-signed ECDSA P-256 root created
/// fresh at run time (nothing is read from or written to disk unless
/// [`TestCa::write_pem`] is called).
///
/// Cloning is cheap and shares the same CA. Trust it in a client by adding
/// [`TestCa::cert_der`] (or the file written by [`TestCa::write_pem`]) to
/// the client's roots.
#[derive(Clone)]
pub struct TestCa {
    inner: Arc<CaInner>,
}

struct CaInner {
    name: String,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    valid_leaf: OnceLock<Leaf>,
    untrusted: OnceLock<TestCa>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// Creates a new CA named "mpnet-testkit CA".
    ///
    /// # Panics
    /// Only if key generation or signing fails, which rcgen does not do for
    /// these fixed parameters.
    pub fn new() -> TestCa {
        Self::with_name("mpnet-testkit CA")
    }

    /// Creates a new CA whose subject common name is `name`.
    ///
    /// # Panics
    /// As [`TestCa::new`].
    pub fn with_name(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("rcgen: generate CA key");
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "mpnet test kit");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2100, 1, 1);
        let cert = params.self_signed(&key).expect("rcgen: self-sign CA");
        TestCa {
            inner: Arc::new(CaInner {
                name: name.to_owned(),
                cert_der: cert.der().clone(),
                cert_pem: cert.pem(),
                issuer: Issuer::new(params, key),
                valid_leaf: OnceLock::new(),
                untrusted: OnceLock::new(),
            }),
        }
    }

    /// The CA certificate, DER-encoded.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.inner.cert_der.clone()
    }

    /// The CA certificate as one PEM block (`-----BEGIN CERTIFICATE-----`).
    pub fn cert_pem(&self) -> String {
        self.inner.cert_pem.clone()
    }

    /// Writes [`TestCa::cert_pem`] to `path`, replacing any file there.
    pub fn write_pem(&self, path: impl AsRef<Path>) -> io::Result<()> {
        std::fs::write(path, self.inner.cert_pem.as_bytes())
    }

    /// A root store holding only this CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.cert_der())
            .expect("the CA certificate parses as a trust anchor");
        roots
    }

    /// A rustls client configuration (ring provider, TLS 1.2 and 1.3) that
    /// trusts only this CA, for tests that talk TLS directly.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let config = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(self.root_store())
            .with_no_client_auth();
        Arc::new(config)
    }

    /// The leaf for [`LOOPBACK_NAMES`] ([`LeafKind::Valid`]); created on the
    /// first call and the same on every later one.
    pub fn leaf(&self) -> Leaf {
        self.inner
            .valid_leaf
            .get_or_init(|| self.issue(&LOOPBACK_NAMES, (2020, 2100)))
            .clone()
    }

    /// A new leaf for `names` (DNS names or IP addresses), valid from
    /// 2020-01-01 to 2100-01-01, issued by this CA.
    ///
    /// # Panics
    /// If a name is neither an IP address nor a valid DNS name.
    pub fn issue_leaf(&self, names: &[&str]) -> Leaf {
        self.issue(names, (2020, 2100))
    }

    /// A new leaf for [`LOOPBACK_NAMES`] that expired on 2001-01-01.
    pub fn expired_leaf(&self) -> Leaf {
        self.issue(&LOOPBACK_NAMES, (2000, 2001))
    }

    /// A new leaf valid in time but only for [`WRONG_HOST`].
    pub fn wrong_host_leaf(&self) -> Leaf {
        self.issue(&[WRONG_HOST], (2020, 2100))
    }

    /// The second CA behind [`LeafKind::Untrusted`]: a different key and
    /// name ("mpnet-testkit untrusted CA"), created on first use. Nothing
    /// trusts it unless a test adds it on purpose.
    pub fn untrusted_ca(&self) -> TestCa {
        self.inner
            .untrusted
            .get_or_init(|| TestCa::with_name("mpnet-testkit untrusted CA"))
            .clone()
    }

    /// A leaf for [`LOOPBACK_NAMES`] issued by [`TestCa::untrusted_ca`].
    pub fn untrusted_leaf(&self) -> Leaf {
        self.untrusted_ca().leaf()
    }

    /// The leaf of the given kind (see [`LeafKind`]).
    pub fn leaf_for(&self, kind: LeafKind) -> Leaf {
        match kind {
            LeafKind::Valid => self.leaf(),
            LeafKind::Expired => self.expired_leaf(),
            LeafKind::WrongHost => self.wrong_host_leaf(),
            LeafKind::Untrusted => self.untrusted_leaf(),
        }
    }

    fn issue(&self, names: &[&str], (from, to): (i32, i32)) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let key = KeyPair::generate().expect("rcgen: generate leaf key");
        let mut params = CertificateParams::new(names.clone()).expect("valid SAN names");
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = date_time_ymd(from, 1, 1);
        params.not_after = date_time_ymd(to, 1, 1);
        let cert = params
            .signed_by(&key, &self.inner.issuer)
            .expect("rcgen: sign leaf");
        Leaf {
            inner: Arc::new(LeafInner {
                names,
                cert_der: cert.der().clone(),
                cert_pem: cert.pem(),
                key_der: key.serialize_der(),
                key_pem: key.serialize_pem(),
                issuer_der: self.cert_der(),
            }),
        }
    }
}

/// A leaf (end-entity) certificate with its private key, as issued by a
/// [`TestCa`]. Cloning is cheap.
#[derive(Clone)]
pub struct Leaf {
    inner: Arc<LeafInner>,
}

struct LeafInner {
    names: Vec<String>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    key_der: Vec<u8>,
    key_pem: String,
    issuer_der: CertificateDer<'static>,
}

impl fmt::Debug for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaf")
            .field("names", &self.inner.names)
            .finish_non_exhaustive()
    }
}

impl Leaf {
    /// The subject alternative names the leaf was issued for.
    pub fn names(&self) -> &[String] {
        &self.inner.names
    }

    /// The leaf certificate, DER-encoded.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.inner.cert_der.clone()
    }

    /// The leaf certificate as PEM.
    pub fn cert_pem(&self) -> &str {
        &self.inner.cert_pem
    }

    /// The certificate of the CA that signed this leaf, DER-encoded.
    pub fn issuer_der(&self) -> CertificateDer<'static> {
        self.inner.issuer_der.clone()
    }

    /// The private key (PKCS#8, DER).
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.inner.key_der.clone()))
    }

    /// The private key as PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn key_pem(&self) -> &str {
        &self.inner.key_pem
    }

    /// A rustls server configuration (ring provider, TLS 1.2 and 1.3, no
    /// client authentication) presenting this leaf alone, with ALPN
    /// `http/1.1` when `alpn_http1` is true and no ALPN otherwise.
    pub fn server_config(&self, alpn_http1: bool) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der()], self.key_der())
            .expect("the leaf key matches its certificate");
        if alpn_http1 {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
        }
        Arc::new(config)
    }
}
