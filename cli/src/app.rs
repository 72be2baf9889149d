//! The global flags of SPEC §9 and the app context they describe.

use std::path::PathBuf;

use clap::Args;
use mpnet_core::{AppContext, Proxy};

use crate::Transport;

/// Flags shared by every subcommand (SPEC §9).
#[derive(Debug, Args)]
pub struct Flags {
    /// The transport: blocking (default) or smol.
    #[arg(long = "transport", value_enum, global = true)]
    pub transport_given: Option<Transport>,
    /// The transport in use (blocking unless --transport says otherwise).
    #[arg(skip)]
    pub transport: Transport,
    /// An allowed origin (repeatable); without any, every origin is allowed.
    #[arg(long = "whitelist", value_name = "ORIGIN", global = true)]
    pub whitelist: Vec<String>,
    /// An extra trusted root certificate, PEM (repeatable).
    #[arg(long = "ca-file", value_name = "PEM", global = true)]
    pub ca_files: Vec<PathBuf>,
    /// The app id used in the Referer.
    #[arg(long, default_value = "mpnet-cli", global = true)]
    pub app_id: String,
    /// The app version used in the Referer.
    #[arg(long, default_value = "0.0.0", global = true)]
    pub app_version: String,
    /// Where downloads are written.
    #[arg(long, value_name = "DIR", global = true)]
    pub temp_dir: Option<PathBuf>,
    /// A folder upload files may be in (repeatable; default: the current folder).
    #[arg(long = "read-dir", value_name = "DIR", global = true)]
    pub read_dirs: Vec<PathBuf>,
    /// An http:// proxy for HTTPS (CONNECT); default: HTTPS_PROXY/NO_PROXY.
    #[arg(long, value_name = "URL", global = true)]
    pub proxy: Option<String>,
    /// Allow plain http:// and ws:// to loopback addresses only.
    #[arg(long, global = true)]
    pub insecure_loopback: bool,
}

impl Flags {
    /// The app context these flags describe. Errors are usage errors.
    pub fn context(&self) -> Result<AppContext, String> {
        let mut b = AppContext::builder(&self.app_id, &self.app_version)
            .allow_insecure_loopback(self.insecure_loopback);
        b = if self.whitelist.is_empty() {
            b.allow_any_origin()
        } else {
            b.whitelist(&self.whitelist).map_err(|e| e.to_string())?
        };
        for path in &self.ca_files {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            b = b
                .add_roots_pem(&pem)
                .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
        }
        let proxy = match &self.proxy {
            Some(url) => Some(Proxy::new(url).map_err(|e| format!("--proxy: {e}"))?),
            None => Proxy::from_env_values(
                env_var("HTTPS_PROXY").as_deref(),
                env_var("NO_PROXY").as_deref(),
            )
            .map_err(|e| format!("HTTPS_PROXY: {e}"))?,
        };
        b = b.proxy(proxy);
        if self.read_dirs.is_empty() {
            let cwd = std::env::current_dir().map_err(|e| format!("current folder: {e}"))?;
            b = b.read_dir(cwd);
        } else {
            for d in &self.read_dirs {
                // Absolute, so absolute filePaths can match it.
                let abs = std::path::absolute(d)
                    .map_err(|e| format!("--read-dir {}: {e}", d.display()))?;
                if !abs.is_dir() {
                    return Err(format!("--read-dir {}: not a folder", d.display()));
                }
                b = b.read_dir(abs);
            }
        }
        let temp = match &self.temp_dir {
            Some(d) => {
                std::path::absolute(d).map_err(|e| format!("--temp-dir {}: {e}", d.display()))?
            }
            None => std::env::temp_dir().join("mpnet-downloads"),
        };
        b = b.temp_dir(temp);
        b.build().map_err(|e| e.to_string())
    }
}

/// An environment variable in upper or lower case (`HTTPS_PROXY`, `https_proxy`).
fn env_var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .or_else(|| std::env::var(name.to_ascii_lowercase()).ok())
}
