//! Every limit the core enforces, in one place (SPEC §2: every limit is
//! explicit and configurable). Each field documents its default and the error
//! that exceeding it gives.

/// The limits of an app context. `Limits::default()` gives the documented
/// defaults; set fields to change them.
///
/// ```
/// let mut limits = mpnet_core::Limits::default();
/// limits.max_body_bytes = 1 << 20;
/// assert_eq!(limits.max_url_bytes, 8192);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest `url` option accepted, in bytes (default 8192). Longer: error
    /// 2 (SPEC §4).
    pub max_url_bytes: usize,
    /// Largest response head (status line and headers), in bytes (default
    /// 64 KiB). Larger: error 19.
    pub max_header_bytes: usize,
    /// Most response header fields (default 128). More: error 19.
    pub max_header_count: usize,
    /// Largest response body held in memory, after decompression (default
    /// 64 MiB). Larger: error 19 (SPEC §4).
    pub max_body_bytes: u64,
    /// Largest chunk-size line or trailer section of a chunked body, in
    /// bytes (default 4096). Larger: error 19.
    pub max_chunk_line_bytes: usize,
    /// Most redirects followed (default 10). More: error 19 (SPEC §4).
    pub max_redirects: u32,
    /// Largest WebSocket message, reassembled (default 16 MiB). Larger:
    /// socket error 12 (SPEC §7).
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_url_bytes: 8192,
            max_header_bytes: 64 * 1024,
            max_header_count: 128,
            max_body_bytes: 64 * 1024 * 1024,
            max_chunk_line_bytes: 4096,
            max_redirects: 10,
            max_message_bytes: 16 * 1024 * 1024,
        }
    }
}
