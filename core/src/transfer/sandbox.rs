//! The file sandbox of SPEC §5 and the file names of SPEC §6, without
//! touching the file system.
//!
//! An upload's `filePath` must be inside one of the app context's read
//! folders; `..` and symbolic links leaving them are refused with 13. The
//! check has two halves:
//!
//! 1. [`resolve_upload_path`] (here, lexical): a relative path is taken
//!    against the first read folder and may not climb above it with `..`;
//!    an absolute path must lie, after its `.` and `..` are resolved, inside
//!    one of the folders. `..` is resolved lexically, as in a URL: `a/..` is
//!    the folder `a` is in, whatever `a` links to.
//! 2. The transport canonicalises the resolved path (following every
//!    symbolic link) and the read folders, and calls [`check_canonical`]: a
//!    link that leads outside every folder is refused with 13. It then
//!    decides, from the file's metadata, that it exists and is a regular
//!    file, else [`not_found`] / [`not_a_file`] (11).
//!
//! The folders are compared as given, component by component. Hosts should
//! configure absolute folders (canonical ones are best): an absolute
//! `filePath` never lies inside a relative folder. [`readable_dirs`] lists
//! the folders an upload may read: the context's read folders, then its
//! temporary folder, so that a file `my.downloadFile` saved can be uploaded.

use std::path::{Component, Path, PathBuf};

use crate::{AppContext, Error, ErrorKind};

/// The folders an upload's `filePath` may be in, in order: the app
/// context's read folders, then its temporary folder (where downloads go),
/// if set and not already listed. Relative `filePath`s resolve against the
/// first of these.
pub fn readable_dirs(ctx: &AppContext) -> Vec<PathBuf> {
    let mut dirs = ctx.read_dirs().to_vec();
    if let Some(temp) = ctx.temp_dir() {
        if !dirs.contains(temp) {
            dirs.push(temp.clone());
        }
    }
    dirs
}

/// The error for a path outside the readable folders (13 for upload).
fn outside(file_path: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::FileAccess,
        format!("filePath {file_path:?} is not allowed: {why}"),
    )
}

/// Resolves an upload's `filePath` lexically inside `read_dirs` (SPEC §5).
///
/// - relative: joined to `read_dirs[0]`; `.` is dropped, `..` removes the
///   component before it, and a `..` that would climb above the folder is
///   [`ErrorKind::FileAccess`] (13);
/// - absolute: its `.` and `..` resolved (`..` at the root stays at the
///   root); then it must start with one of `read_dirs` (each resolved the
///   same way), else 13;
/// - a NUL byte (no file can be named so), no read folder at all, or (on
///   Windows) a path with a root but no drive or a drive but no root: 13;
/// - an empty path, `.` or `a/..` (the folder itself), or a path inside
///   the folders ending in a separator (it names a folder):
///   [`ErrorKind::FileNotFound`] (11).
///
/// The result is not canonical: the transport canonicalises it and calls
/// [`check_canonical`] before opening the file.
///
/// ```
/// use std::path::{Path, PathBuf};
/// use mpnet_core::{Api, transfer::sandbox::resolve_upload_path};
/// let dirs = [PathBuf::from("/srv/app/files")];
/// # #[cfg(unix)] {
/// assert_eq!(
///     resolve_upload_path(&dirs, "sub/../a.jpg").unwrap(),
///     Path::new("/srv/app/files/a.jpg")
/// );
/// assert_eq!(resolve_upload_path(&dirs, "../x").unwrap_err().code(Api::Upload), 13);
/// assert_eq!(resolve_upload_path(&dirs, "/etc/passwd").unwrap_err().code(Api::Upload), 13);
/// # }
/// ```
pub fn resolve_upload_path(read_dirs: &[PathBuf], file_path: &str) -> Result<PathBuf, Error> {
    if file_path.is_empty() {
        return Err(Error::new(
            ErrorKind::FileNotFound,
            "filePath is empty: it names no file",
        ));
    }
    if file_path.contains('\0') {
        return Err(outside(file_path, "it holds a NUL character"));
    }
    let resolved = resolve_lexically(read_dirs, file_path)?;
    if file_path.ends_with('/') || (cfg!(windows) && file_path.ends_with('\\')) {
        return Err(Error::new(
            ErrorKind::FileNotFound,
            format!("filePath {file_path:?} names a folder, not a file"),
        ));
    }
    Ok(resolved)
}

/// [`resolve_upload_path`] after its first checks, without the trailing
/// separator rule.
fn resolve_lexically(read_dirs: &[PathBuf], file_path: &str) -> Result<PathBuf, Error> {
    let path = Path::new(file_path);
    if path.is_absolute() {
        let resolved = lexical_absolute(path);
        let inside = read_dirs
            .iter()
            .any(|dir| resolved.starts_with(lexical_absolute(dir)));
        return if inside {
            Ok(resolved)
        } else {
            Err(outside(
                file_path,
                "it is outside the app's readable folders",
            ))
        };
    }
    let Some(base) = read_dirs.first() else {
        return Err(outside(file_path, "the app context has no readable folder"));
    };
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(name) => parts.push(name),
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(outside(file_path, "`..` climbs out of the readable folder"));
                }
            }
            // Only on Windows: `\x` (root, no drive) or `C:x` (drive, no
            // root) are relative to something other than the folder.
            Component::RootDir | Component::Prefix(_) => {
                return Err(outside(
                    file_path,
                    "a path relative to a drive or a drive's root is not allowed",
                ))
            }
        }
    }
    if parts.is_empty() {
        return Err(Error::new(
            ErrorKind::FileNotFound,
            format!("filePath {file_path:?} names the readable folder itself, not a file"),
        ));
    }
    let mut resolved = lexical_absolute(base);
    resolved.extend(parts);
    Ok(resolved)
}

/// `path` with `.` dropped and `..` resolved lexically. For an absolute
/// path a `..` at the root stays at the root; for a relative one (a
/// relative read folder) a leading `..` is kept.
fn lexical_absolute(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(component),
            },
            other => out.push(other),
        }
    }
    out.iter().collect()
}

/// The second half of the sandbox (SPEC §5: "symlinks leaving them are
/// refused with 13"): `canonical_path` is the file's path with every
/// symbolic link followed (`std::fs::canonicalize`), `canonical_dirs` the
/// read folders canonicalised the same way (folders that do not exist are
/// left out). `Ok` when the file lies inside one of them, else
/// [`ErrorKind::FileAccess`] (13).
pub fn check_canonical(canonical_dirs: &[PathBuf], canonical_path: &Path) -> Result<(), Error> {
    if canonical_dirs
        .iter()
        .any(|dir| canonical_path.starts_with(dir))
    {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::FileAccess,
            format!(
                "filePath resolves to {}, outside the app's readable folders",
                canonical_path.display()
            ),
        ))
    }
}

/// The file does not exist (SPEC §5: error 11).
pub fn not_found(path: &Path) -> Error {
    Error::new(
        ErrorKind::FileNotFound,
        format!("file {} does not exist", path.display()),
    )
}

/// The path exists but is not a regular file (a folder, a device, ...):
/// SPEC §5 error 11.
pub fn not_a_file(path: &Path) -> Error {
    Error::new(
        ErrorKind::FileNotFound,
        format!("{} is not a regular file", path.display()),
    )
}

/// Classifies a failure to canonicalise, stat or open the file to upload:
/// not found, a path through a non-folder, or a folder: 11; permission
/// denied: 13; anything else: upload failed (12).
pub fn open_error(path: &Path, err: &std::io::Error) -> Error {
    use std::io::ErrorKind as Io;
    match err.kind() {
        Io::NotFound | Io::NotADirectory => not_found(path),
        Io::IsADirectory => not_a_file(path),
        Io::PermissionDenied => Error::new(
            ErrorKind::FileAccess,
            format!("no permission to read {}: {err}", path.display()),
        ),
        _ => Error::new(
            ErrorKind::Unknown,
            format!("cannot open {}: {err}", path.display()),
        ),
    }
}

/// Reading the file failed while it was being sent, or it ended before the
/// length it had when the upload started (SPEC §5: upload failed, 12).
pub fn read_error(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Unknown,
        format!("reading {} failed during the upload: {why}", path.display()),
    )
}

/// The most bytes of an extension taken from a URL path.
const MAX_EXTENSION: usize = 8;

/// Extensions for content types (SPEC §6: the extension is taken "from the
/// URL path or content type"), matched on the media type in lower case,
/// parameters ignored.
const CONTENT_TYPE_EXTENSIONS: &[(&str, &str)] = &[
    ("image/jpeg", "jpg"),
    ("image/pjpeg", "jpg"),
    ("image/png", "png"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("image/svg+xml", "svg"),
    ("image/bmp", "bmp"),
    ("image/x-icon", "ico"),
    ("image/vnd.microsoft.icon", "ico"),
    ("image/heic", "heic"),
    ("text/plain", "txt"),
    ("text/html", "html"),
    ("text/css", "css"),
    ("text/csv", "csv"),
    ("text/javascript", "js"),
    ("application/javascript", "js"),
    ("application/json", "json"),
    ("application/xml", "xml"),
    ("application/pdf", "pdf"),
    ("application/zip", "zip"),
    ("audio/mpeg", "mp3"),
    ("audio/mp4", "m4a"),
    ("audio/wav", "wav"),
    ("video/mp4", "mp4"),
    ("video/quicktime", "mov"),
    ("application/octet-stream", "bin"),
];

/// The extension of a URL path's last segment, in lower case, if it has a
/// safe one: after the last `.`, 1 to 8 ASCII letters and digits, with a
/// non-empty name before the dot (`/.htaccess` has none). Percent-encoded
/// bytes make an extension unsafe.
///
/// ```
/// use mpnet_core::transfer::sandbox::url_extension;
/// assert_eq!(url_extension("/tfs/TB1x669-520-280.JPG").as_deref(), Some("jpg"));
/// assert_eq!(url_extension("/a.tar.gz").as_deref(), Some("gz"));
/// assert_eq!(url_extension("/download"), None);
/// assert_eq!(url_extension("/a.j%70g"), None);
/// assert_eq!(url_extension("/dir.d/"), None);
/// ```
pub fn url_extension(url_path: &str) -> Option<String> {
    let segment = url_path.rsplit('/').next().unwrap_or(url_path);
    let (stem, ext) = segment.rsplit_once('.')?;
    let safe = !stem.is_empty()
        && !ext.is_empty()
        && ext.len() <= MAX_EXTENSION
        && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    safe.then(|| ext.to_ascii_lowercase())
}

/// The extension for a `Content-Type` value (see the table in the source:
/// `image/jpeg` → `jpg`, `text/plain` → `txt`, `application/octet-stream`
/// → `bin`, ...), or `None` for a type not in it.
///
/// ```
/// use mpnet_core::transfer::sandbox::content_type_extension;
/// assert_eq!(content_type_extension("Image/JPEG; q=1"), Some("jpg"));
/// assert_eq!(content_type_extension("application/x-unknown"), None);
/// ```
pub fn content_type_extension(content_type: &str) -> Option<&'static str> {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    CONTENT_TYPE_EXTENSIONS
        .iter()
        .find(|(ct, _)| ct.eq_ignore_ascii_case(essence))
        .map(|(_, ext)| *ext)
}

/// The extension a downloaded file gets (SPEC §6): the URL path's
/// ([`url_extension`]), else the content type's
/// ([`content_type_extension`]), else none.
pub fn download_extension(url_path: &str, content_type: Option<&str>) -> Option<String> {
    url_extension(url_path).or_else(|| {
        content_type
            .and_then(content_type_extension)
            .map(str::to_string)
    })
}

/// The two paths of one download (SPEC §6), both directly inside
/// `temp_dir`: `(temp, final)`.
///
/// - temp: `.mpnet-{unique:016x}.part`, the file the body is streamed
///   into;
/// - final: `mpnet-{unique:016x}.{ext}` (no `.{ext}` when none is known),
///   the file it is renamed to once complete, with the extension of
///   [`download_extension`].
///
/// `unique` comes from the caller: two downloads in flight must use
/// different values (both transports take 64 bits from the operating
/// system's random source, so two names clash with a chance of 2^-64).
/// Only the extension comes from the server, and it is restricted to ASCII
/// letters and digits, so no name can leave the folder. The transports
/// create the temp file with `create_new` (a name in use fails the
/// download, error 12, and touches nothing) and rename it to the final
/// name once complete; like any rename on Unix, that replaces a file
/// already at the final name.
///
/// ```
/// use std::path::Path;
/// use mpnet_core::transfer::sandbox::download_paths;
/// let (temp, done) = download_paths(Path::new("/tmp/app"), "/img/a.PNG", None, 0x2a);
/// assert_eq!(temp, Path::new("/tmp/app/.mpnet-000000000000002a.part"));
/// assert_eq!(done, Path::new("/tmp/app/mpnet-000000000000002a.png"));
/// ```
pub fn download_paths(
    temp_dir: &Path,
    url_path: &str,
    content_type: Option<&str>,
    unique: u64,
) -> (PathBuf, PathBuf) {
    let temp = temp_dir.join(format!(".mpnet-{unique:016x}.part"));
    let name = match download_extension(url_path, content_type) {
        Some(ext) => format!("mpnet-{unique:016x}.{ext}"),
        None => format!("mpnet-{unique:016x}"),
    };
    (temp, temp_dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Api;

    #[test]
    fn lexical_absolute_resolves_dots() {
        assert_eq!(
            lexical_absolute(Path::new("/a/./b/../c")),
            Path::new("/a/c")
        );
        assert_eq!(lexical_absolute(Path::new("/../a")), Path::new("/a"));
        assert_eq!(lexical_absolute(Path::new("./a/..")), Path::new(""));
        assert_eq!(lexical_absolute(Path::new("../a")), Path::new("../a"));
    }

    #[test]
    fn no_read_dir_refuses_everything() {
        let e = resolve_upload_path(&[], "a.txt").unwrap_err();
        assert_eq!(e.code(Api::Upload), 13);
    }

    #[test]
    fn open_errors_are_classified() {
        let p = Path::new("/x");
        let io = |k| std::io::Error::from(k);
        assert_eq!(
            open_error(p, &io(std::io::ErrorKind::NotFound)).code(Api::Upload),
            11
        );
        assert_eq!(
            open_error(p, &io(std::io::ErrorKind::PermissionDenied)).code(Api::Upload),
            13
        );
        assert_eq!(
            open_error(p, &io(std::io::ErrorKind::Other)).code(Api::Upload),
            12
        );
    }
}
