//! Deterministic content the servers send, reproducible by tests.

/// The seed `/bytes/N` and `/stream-bytes/N` use when no `?seed=` is given.
pub const DEFAULT_SEED: u64 = 0x6d70_6e65_7400; // "mpnet\0"

/// The size of `/download/NAME` when no `?size=` is given.
pub const DEFAULT_DOWNLOAD_SIZE: u64 = 10 * 1024;

/// A deterministic byte generator: splitmix64, each 64-bit output emitted as
/// 8 little-endian bytes. The byte stream depends only on the seed, never on
/// how it is split into calls of [`PseudoRandom::fill`].
#[derive(Clone, Debug)]
pub struct PseudoRandom {
    state: u64,
    word: [u8; 8],
    used: usize,
}

impl PseudoRandom {
    /// A generator at the start of the stream for `seed`.
    pub fn new(seed: u64) -> Self {
        PseudoRandom {
            state: seed,
            word: [0; 8],
            used: 8,
        }
    }

    fn next_word(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fills `out` with the next `out.len()` bytes of the stream.
    pub fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            if self.used == 8 {
                self.word = self.next_word().to_le_bytes();
                self.used = 0;
            }
            *b = self.word[self.used];
            self.used += 1;
        }
    }
}

/// The first `len` bytes of the [`PseudoRandom`] stream for `seed`: exactly
/// what `/bytes/{len}?seed={seed}` and `/stream-bytes/{len}?seed={seed}`
/// send.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    PseudoRandom::new(seed).fill(&mut out);
    out
}

/// FNV-1a (64-bit) of `bytes`: the seed of a binary `/download/NAME`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The lower-case extension of a file name (`"a/b.PNG"` gives `"png"`), or
/// `""` when it has none.
fn extension(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    match base.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// The content type `/download/NAME` sends for `name`, from its extension:
/// `png` `image/png`, `jpg`/`jpeg` `image/jpeg`, `gif` `image/gif`, `webp`
/// `image/webp`, `svg` `image/svg+xml`, `mp4` `video/mp4`, `mp3`
/// `audio/mpeg`, `wav` `audio/wav`, `pdf` `application/pdf`, `zip`
/// `application/zip`, `txt` `text/plain; charset=utf-8`, `html`/`htm`
/// `text/html; charset=utf-8`, `json` `application/json`, `csv` `text/csv`,
/// `xml` `application/xml`; anything else `application/octet-stream`.
pub fn content_type_for_name(name: &str) -> &'static str {
    match extension(name).as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "txt" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "csv" => "text/csv",
        "xml" => "application/xml",
        _ => "application/octet-stream",
    }
}

/// Whether `/download/NAME` sends text (a repeated ASCII line) rather than
/// pseudo-random bytes: true for `txt`, `html`, `htm`, `json`, `csv`, `xml`,
/// `svg`.
fn is_text_name(name: &str) -> bool {
    matches!(
        extension(name).as_str(),
        "txt" | "html" | "htm" | "json" | "csv" | "xml" | "svg"
    )
}

/// The deterministic generator behind `/download/NAME`.
#[derive(Clone, Debug)]
pub(crate) enum ContentGen {
    Random(PseudoRandom),
    Pattern { pattern: Vec<u8>, pos: usize },
}

impl ContentGen {
    pub(crate) fn for_download(name: &str) -> ContentGen {
        if is_text_name(name) {
            // Only printable ASCII in the line, whatever the name holds.
            let safe: String = name
                .chars()
                .map(|c| if c.is_ascii_graphic() { c } else { '_' })
                .collect();
            ContentGen::Pattern {
                pattern: format!("mpnet-testkit download {safe}\n").into_bytes(),
                pos: 0,
            }
        } else {
            ContentGen::Random(PseudoRandom::new(fnv1a64(name.as_bytes())))
        }
    }

    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        match self {
            ContentGen::Random(r) => r.fill(out),
            ContentGen::Pattern { pattern, pos } => {
                for b in out {
                    *b = pattern[*pos];
                    *pos = (*pos + 1) % pattern.len();
                }
            }
        }
    }
}

/// The first `size` bytes `/download/{name}` sends (`name` percent-decoded,
/// as the server sees it). Text-like names (`.txt`, `.html`, `.htm`,
/// `.json`, `.csv`, `.xml`, `.svg`) get the ASCII line
/// `mpnet-testkit download {name}\n` repeated and cut at `size` (characters
/// outside printable ASCII replaced by `_`); all other names get
/// [`PseudoRandom`] bytes seeded with [`fnv1a64`] of the name.
pub fn download_content(name: &str, size: usize) -> Vec<u8> {
    let mut out = vec![0; size];
    ContentGen::for_download(name).fill(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_does_not_matter() {
        let whole = pseudo_random_bytes(7, 100);
        let mut g = PseudoRandom::new(7);
        let mut parts = vec![0; 100];
        g.fill(&mut parts[..3]);
        g.fill(&mut parts[3..50]);
        g.fill(&mut parts[50..]);
        assert_eq!(whole, parts);
        assert_ne!(pseudo_random_bytes(8, 100), whole);
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type_for_name("a.PNG"), "image/png");
        assert_eq!(content_type_for_name(".png"), "application/octet-stream");
        assert_eq!(content_type_for_name("x"), "application/octet-stream");
        assert!(download_content("a.txt", 30).starts_with(b"mpnet-testkit download a.txt\n"));
    }
}
