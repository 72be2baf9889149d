//! The app context of SPEC §3: who the app is, which origins it may reach,
//! whether plain `http`/`ws` to loopback is allowed, which extra CAs it
//! trusts, its proxy, its file areas and its limits. A host builds one per
//! app and every call runs inside it.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderValue};

use crate::error::{Api, Error, ErrorKind};
use crate::policy::{DomainPolicy, OriginPattern};
use crate::target::{Scheme, Target, UrlError};
use crate::target_cache::TargetCache;
use crate::Limits;

/// The referer template of the seed (SPEC §3).
pub const DEFAULT_REFERER_TEMPLATE: &str = "https://urlhost/{appid}/{version}/page-frame.html";

/// Default bound on requests in flight per app (SPEC §4 transports: more wait
/// in order).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10;

/// An HTTP proxy: `http://host:port` reached with `CONNECT` for HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    target: Target,
    no_proxy: Vec<NoProxyRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NoProxyRule {
    /// `*`: no proxy for any host.
    All,
    /// A host or domain suffix (`example.com` also covers `a.example.com`).
    Domain(String),
}

impl Proxy {
    /// A proxy at `url` (`http://host:port`; `https://` proxies are not
    /// supported).
    pub fn new(url: &str) -> Result<Proxy, ContextError> {
        let target = Target::parse(url, &Limits::default())
            .map_err(|e| ContextError(format!("proxy url {url:?}: {e}")))?;
        if target.scheme() != Scheme::Http {
            return Err(ContextError(format!(
                "proxy url {url:?}: only http:// proxies are supported"
            )));
        }
        Ok(Proxy {
            target,
            no_proxy: Vec::new(),
        })
    }

    /// The proxy from the values of `HTTPS_PROXY` and `NO_PROXY` (the
    /// transport reads the environment and passes the values in). An empty
    /// or missing `https_proxy` gives `None`. A value without a scheme is
    /// taken as `http://`.
    pub fn from_env_values(
        https_proxy: Option<&str>,
        no_proxy: Option<&str>,
    ) -> Result<Option<Proxy>, ContextError> {
        let Some(raw) = https_proxy.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let url = if raw.contains("://") {
            raw.to_string()
        } else {
            format!("http://{raw}")
        };
        let mut proxy = Proxy::new(&url)?;
        if let Some(list) = no_proxy {
            proxy = proxy.with_no_proxy(list);
        }
        Ok(Some(proxy))
    }

    /// Adds `NO_PROXY`-style rules: comma-separated hosts or domain suffixes
    /// (a leading `.` is ignored), or `*` for every host.
    pub fn with_no_proxy(mut self, list: &str) -> Proxy {
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                self.no_proxy.push(NoProxyRule::All);
            } else {
                let host = item.trim_start_matches('.').trim_end_matches('.');
                // A port in a NO_PROXY entry is ignored: the rule is per host.
                let host = match host.rsplit_once(':') {
                    Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
                    _ => host,
                };
                self.no_proxy
                    .push(NoProxyRule::Domain(host.to_ascii_lowercase()));
            }
        }
        self
    }

    /// The proxy's own address.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Whether requests to `target` go through this proxy.
    pub fn applies_to(&self, target: &Target) -> bool {
        let host = target.connect_host();
        !self.no_proxy.iter().any(|rule| match rule {
            NoProxyRule::All => true,
            NoProxyRule::Domain(d) => {
                host == *d
                    || (host.len() > d.len()
                        && host.ends_with(d.as_str())
                        && host.as_bytes()[host.len() - d.len() - 1] == b'.')
            }
        })
    }
}

/// A problem in the host's configuration of an app context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextError(pub String);

impl std::fmt::Display for ContextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ContextError {}

/// The app context (SPEC §3). Cheap to clone (shared inside).
///
/// ```
/// use mpnet_core::{AppContext, DomainPolicy};
/// let ctx = AppContext::builder("2021000000000000", "1.0.0")
///     .whitelist(["https://api.example.com"])
///     .unwrap()
///     .build()
///     .unwrap();
/// assert_eq!(
///     ctx.referer().to_str().unwrap(),
///     "https://urlhost/2021000000000000/1.0.0/page-frame.html"
/// );
/// ```
#[derive(Debug, Clone)]
pub struct AppContext {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    app_id: String,
    version: String,
    referer: HeaderValue,
    policy: DomainPolicy,
    insecure_loopback: bool,
    limits: Limits,
    extra_roots_der: Vec<Vec<u8>>,
    use_web_pki_roots: bool,
    proxy: Option<Proxy>,
    read_dirs: Vec<PathBuf>,
    temp_dir: Option<PathBuf>,
    user_agent: Option<HeaderValue>,
    max_in_flight: usize,
    /// Parses of the URLs this app requests (see [`AppContext::parse_target`]).
    targets: TargetCache,
    /// The headers of a `my.request` that sets none, built on first use
    /// (see [`AppContext::default_request_headers`]).
    request_defaults: OnceLock<Arc<HeaderMap>>,
}

impl AppContext {
    /// Starts a context for the app `app_id` at `version`.
    pub fn builder(app_id: impl Into<String>, version: impl Into<String>) -> AppContextBuilder {
        AppContextBuilder {
            app_id: app_id.into(),
            version: version.into(),
            referer_template: DEFAULT_REFERER_TEMPLATE.to_string(),
            policy: None,
            insecure_loopback: false,
            limits: Limits::default(),
            extra_roots_der: Vec::new(),
            use_web_pki_roots: true,
            proxy: None,
            read_dirs: Vec::new(),
            temp_dir: None,
            user_agent: Some(concat!("mpnet/", env!("CARGO_PKG_VERSION")).to_string()),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    /// The app's id.
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }
    /// The app's version.
    pub fn version(&self) -> &str {
        &self.inner.version
    }
    /// The `Referer` every request carries: the template filled in.
    pub fn referer(&self) -> &HeaderValue {
        &self.inner.referer
    }
    /// The domain policy.
    pub fn policy(&self) -> &DomainPolicy {
        &self.inner.policy
    }
    /// Whether plain `http`/`ws` to loopback is allowed (development switch).
    pub fn insecure_loopback(&self) -> bool {
        self.inner.insecure_loopback
    }
    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }
    /// Extra trusted CA certificates (DER), on top of the web PKI roots.
    pub fn extra_roots_der(&self) -> &[Vec<u8>] {
        &self.inner.extra_roots_der
    }
    /// Whether the web PKI roots are trusted (default true).
    pub fn use_web_pki_roots(&self) -> bool {
        self.inner.use_web_pki_roots
    }
    /// The proxy, if any.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.inner.proxy.as_ref()
    }
    /// Folders an upload's `filePath` may be in (SPEC §5).
    pub fn read_dirs(&self) -> &[PathBuf] {
        &self.inner.read_dirs
    }
    /// The folder downloads go to (SPEC §6).
    pub fn temp_dir(&self) -> Option<&PathBuf> {
        self.inner.temp_dir.as_ref()
    }
    /// The `User-Agent` sent when the caller sets none.
    pub fn user_agent(&self) -> Option<&HeaderValue> {
        self.inner.user_agent.as_ref()
    }
    /// The most requests in flight at once for this app.
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight
    }

    /// Parses `url` exactly as [`Target::parse`]`(url, self.limits())` does
    /// (same target, same errors), memoised in the context's bounded
    /// [`TargetCache`]: a URL requested again is not parsed again, and the
    /// target handed out shares its text with the cached one (no
    /// allocation). Only the parse is memoised: callers still run
    /// [`AppContext::check_target`] on every request.
    pub fn parse_target(&self, url: &str) -> Result<Target, UrlError> {
        self.inner.targets.parse(url, &self.inner.limits)
    }

    /// The header map every `my.request` of this context that sets no
    /// headers sends, shared. `build` makes it the first time (it depends
    /// only on this context, which never changes); later calls return the
    /// same map. An error from `build` is returned and nothing is kept.
    pub(crate) fn default_request_headers(
        &self,
        build: impl FnOnce() -> Result<HeaderMap, Error>,
    ) -> Result<Arc<HeaderMap>, Error> {
        if let Some(map) = self.inner.request_defaults.get() {
            return Ok(Arc::clone(map));
        }
        let map = Arc::new(build()?);
        Ok(Arc::clone(self.inner.request_defaults.get_or_init(|| map)))
    }

    /// Checks that `api` may reach `target`: the scheme belongs to the API,
    /// plain schemes only to loopback with the development switch on, and the
    /// origin passes the domain policy (SPEC §3). Used for the first request
    /// and for every redirect hop.
    pub fn check_target(&self, target: &Target, api: Api) -> Result<(), Error> {
        let scheme = target.scheme();
        let websocket = api == Api::Socket;
        if scheme.is_websocket() != websocket {
            return Err(Error::new(
                ErrorKind::UnsupportedScheme,
                format!(
                    "url scheme {}:// is not allowed here; use {}",
                    scheme.as_str(),
                    if websocket { "wss://" } else { "https://" }
                ),
            ));
        }
        let plain_allowed = self.inner.insecure_loopback && target.is_loopback();
        if !scheme.is_secure() && !plain_allowed {
            let why = if self.inner.insecure_loopback {
                "plain http/ws is allowed only to loopback"
            } else {
                "only HTTPS/WSS is allowed"
            };
            return Err(Error::new(
                ErrorKind::Insecure,
                format!("{target} is not secure: {why}"),
            ));
        }
        if !self.inner.policy.allows(target) {
            // The URL's text drops a written default port (`:443`), but the
            // whitelist does not (an entry with no port needs none written):
            // say so, or the message names an origin the list holds.
            let host = target.host_header_str();
            let message = match target.explicit_port() {
                Some(port) if port == scheme.default_port() => format!(
                    "origin {}://{host}:{port} is not in the domain whitelist \
                     (the URL writes port {port}: an entry without a port matches \
                     only URLs that write none)",
                    scheme.as_str()
                ),
                _ => format!(
                    "origin {}://{host} is not in the domain whitelist",
                    scheme.as_str()
                ),
            };
            return Err(Error::new(ErrorKind::NotAllowed, message));
        }
        Ok(())
    }
}

/// Builds an [`AppContext`]. The domain policy must be chosen explicitly
/// ([`whitelist`](Self::whitelist) or [`allow_any_origin`](Self::allow_any_origin)).
#[derive(Debug, Clone)]
#[must_use]
pub struct AppContextBuilder {
    app_id: String,
    version: String,
    referer_template: String,
    policy: Option<DomainPolicy>,
    insecure_loopback: bool,
    limits: Limits,
    extra_roots_der: Vec<Vec<u8>>,
    use_web_pki_roots: bool,
    proxy: Option<Proxy>,
    read_dirs: Vec<PathBuf>,
    temp_dir: Option<PathBuf>,
    user_agent: Option<String>,
    max_in_flight: usize,
}

impl AppContextBuilder {
    /// Only these origins may be reached (SPEC §3 whitelist entries).
    pub fn whitelist<I, S>(mut self, entries: I) -> Result<Self, ContextError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let parsed = entries
            .into_iter()
            .map(|s| s.as_ref().parse::<OriginPattern>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ContextError(e.to_string()))?;
        self.policy = Some(DomainPolicy::Whitelist(parsed));
        Ok(self)
    }
    /// Any origin may be reached (the IDE's "ignore domain check").
    pub fn allow_any_origin(mut self) -> Self {
        self.policy = Some(DomainPolicy::AllowAny);
        self
    }
    /// Sets the domain policy directly.
    pub fn domain_policy(mut self, policy: DomainPolicy) -> Self {
        self.policy = Some(policy);
        self
    }
    /// Allows plain `http`/`ws` to loopback addresses (for tests; off by default).
    pub fn allow_insecure_loopback(mut self, allow: bool) -> Self {
        self.insecure_loopback = allow;
        self
    }
    /// Another referer template; `{appid}` and `{version}` are filled in.
    pub fn referer_template(mut self, template: impl Into<String>) -> Self {
        self.referer_template = template.into();
        self
    }
    /// Replaces the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Trusts one more CA certificate (DER).
    pub fn add_root_der(mut self, der: Vec<u8>) -> Self {
        self.extra_roots_der.push(der);
        self
    }
    /// Trusts every CA certificate in a PEM text.
    pub fn add_roots_pem(mut self, pem: &str) -> Result<Self, ContextError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::CertificateDer;
        let ders = CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(|c| c.map(|c| c.as_ref().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ContextError(format!("bad PEM: {e}")))?;
        if ders.is_empty() {
            return Err(ContextError("no CERTIFICATE block in the PEM text".into()));
        }
        self.extra_roots_der.extend(ders);
        Ok(self)
    }
    /// Whether the web PKI roots are trusted too (default true).
    pub fn use_web_pki_roots(mut self, use_them: bool) -> Self {
        self.use_web_pki_roots = use_them;
        self
    }
    /// Sends requests through `proxy`.
    pub fn proxy(mut self, proxy: Option<Proxy>) -> Self {
        self.proxy = proxy;
        self
    }
    /// Adds a folder that upload `filePath`s may be in.
    pub fn read_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.read_dirs.push(dir.into());
        self
    }
    /// The folder downloads are written to.
    pub fn temp_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }
    /// The `User-Agent` sent when a request sets none (`None`: send none).
    pub fn user_agent(mut self, ua: Option<String>) -> Self {
        self.user_agent = ua;
        self
    }
    /// The most requests in flight at once (at least 1).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Builds the context. Fails when no domain policy was chosen or the
    /// referer or user agent is not a valid header value.
    pub fn build(self) -> Result<AppContext, ContextError> {
        let policy = self.policy.ok_or_else(|| {
            ContextError(
                "no domain policy: call whitelist(...) or allow_any_origin() (SPEC §3)".into(),
            )
        })?;
        let referer = self
            .referer_template
            .replace("{appid}", &self.app_id)
            .replace("{version}", &self.version);
        let referer = HeaderValue::from_str(&referer).map_err(|_| {
            ContextError(format!("referer {referer:?} is not a valid header value"))
        })?;
        let user_agent = match self.user_agent {
            Some(ua) => Some(
                HeaderValue::from_str(&ua)
                    .map_err(|_| ContextError(format!("user agent {ua:?} is not valid")))?,
            ),
            None => None,
        };
        Ok(AppContext {
            inner: Arc::new(Inner {
                app_id: self.app_id,
                version: self.version,
                referer,
                policy,
                insecure_loopback: self.insecure_loopback,
                limits: self.limits,
                extra_roots_der: self.extra_roots_der,
                use_web_pki_roots: self.use_web_pki_roots,
                proxy: self.proxy,
                read_dirs: self.read_dirs,
                temp_dir: self.temp_dir,
                user_agent,
                max_in_flight: self.max_in_flight,
                targets: TargetCache::new(),
                request_defaults: OnceLock::new(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_url_error_says_what_is_wrong_in_words() {
        let e = Proxy::new("http://").unwrap_err().to_string();
        assert!(e.contains("cannot be parsed"), "{e}");
        assert!(!e.contains("Unparseable"), "{e}");
        let e = Proxy::new("https://proxy.example:8443")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only http:// proxies"), "{e}");
        assert!(Proxy::new("http://127.0.0.1:3128").is_ok());
    }
}
