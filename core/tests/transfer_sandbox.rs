//! The upload file sandbox (SPEC §5: files outside the read folders, `..`
//! and symlinks leaving them are 13; missing or not regular is 11) and the
//! download file names (SPEC §6: inside the temp folder, extension from the
//! URL path or content type).

use std::path::{Path, PathBuf};

use mpnet_core::transfer::sandbox::{
    check_canonical, content_type_extension, download_extension, download_paths, not_a_file,
    not_found, readable_dirs, resolve_upload_path, url_extension,
};
use mpnet_core::{Api, AppContext};

/// `Ok(path)` or the upload error code.
fn resolve(dirs: &[PathBuf], file_path: &str) -> Result<PathBuf, u32> {
    resolve_upload_path(dirs, file_path).map_err(|e| e.code(Api::Upload))
}

#[cfg(unix)]
#[test]
fn upload_path_table() {
    let dirs = vec![
        PathBuf::from("/srv/app/files"),
        PathBuf::from("/srv/app/./other/"),
    ];
    let ok = |p: &str| Ok(PathBuf::from(p));
    let table: &[(&str, Result<PathBuf, u32>)] = &[
        ("a.txt", ok("/srv/app/files/a.txt")),
        ("sub/a.txt", ok("/srv/app/files/sub/a.txt")),
        ("./sub/./a.txt", ok("/srv/app/files/sub/a.txt")),
        ("sub//a.txt", ok("/srv/app/files/sub/a.txt")),
        ("sub/../a.txt", ok("/srv/app/files/a.txt")),
        ("~/a.txt", ok("/srv/app/files/~/a.txt")),
        ("a\\..\\..\\b", ok("/srv/app/files/a\\..\\..\\b")),
        ("../x", Err(13)),
        ("..", Err(13)),
        ("sub/../../x", Err(13)),
        ("sub/../../files/a.txt", Err(13)),
        ("/etc/passwd", Err(13)),
        ("/srv/app/files/a.txt", ok("/srv/app/files/a.txt")),
        ("/srv/app/files/sub/../a.txt", ok("/srv/app/files/a.txt")),
        ("/srv/app/other/b/c.png", ok("/srv/app/other/b/c.png")),
        ("//srv/app/files/a.txt", ok("/srv/app/files/a.txt")),
        ("/../srv/app/files/a.txt", ok("/srv/app/files/a.txt")),
        ("/srv/app/files/../secret", Err(13)),
        ("/srv/app/files/../other/x", ok("/srv/app/other/x")),
        ("/srv/app/filesystem/a", Err(13)),
        ("/srv/app", Err(13)),
        ("/", Err(13)),
        ("a\0b", Err(13)),
        ("/srv/app/files/a\0", Err(13)),
        ("", Err(11)),
        (".", Err(11)),
        ("sub/..", Err(11)),
        ("sub/", Err(11)),
        ("/srv/app/files/sub/", Err(11)),
    ];
    for (input, want) in table {
        assert_eq!(&resolve(&dirs, input), want, "{input:?}");
    }
}

#[test]
fn no_read_folder_refuses_every_path() {
    for p in ["a.txt", "/srv/a.txt"] {
        assert_eq!(resolve(&[], p), Err(13), "{p}");
    }
}

#[test]
fn relative_read_folder_takes_relative_paths() {
    let dirs = vec![PathBuf::from(".")];
    assert_eq!(resolve(&dirs, "a/b.txt"), Ok(PathBuf::from("a/b.txt")));
    assert_eq!(resolve(&dirs, "../b.txt"), Err(13));
}

#[cfg(unix)]
#[test]
fn canonical_check_table() {
    let dirs = vec![PathBuf::from("/real/files"), PathBuf::from("/real/tmp")];
    let table = [
        ("/real/files/a.jpg", true),
        ("/real/files/deep/er/a.jpg", true),
        ("/real/tmp/x", true),
        ("/real/files", true),
        ("/real/filesx/a", false),
        ("/real", false),
        ("/etc/passwd", false),
    ];
    for (path, inside) in table {
        let got = check_canonical(&dirs, Path::new(path)).map_err(|e| e.code(Api::Upload));
        assert_eq!(got, if inside { Ok(()) } else { Err(13) }, "{path}");
    }
    assert_eq!(
        check_canonical(&[], Path::new("/a"))
            .unwrap_err()
            .code(Api::Upload),
        13
    );
}

#[test]
fn file_errors_are_11() {
    assert_eq!(not_found(Path::new("/x")).code(Api::Upload), 11);
    assert_eq!(not_a_file(Path::new("/x")).code(Api::Upload), 11);
}

/// The whole procedure a transport follows, on a real folder: resolve
/// lexically, canonicalise, check the canonical path. A symbolic link that
/// leads out of the folder is refused with 13; one that stays inside is fine.
#[cfg(unix)]
#[test]
fn symlinks_leaving_the_folder_are_refused() {
    use std::os::unix::fs::symlink;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let root = std::env::temp_dir().join(format!("mpnet-sandbox-{}-{nanos}", std::process::id()));
    let read = root.join("read");
    let outside = root.join("outside");
    std::fs::create_dir_all(read.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(read.join("sub/inside.txt"), b"in").unwrap();
    std::fs::write(outside.join("secret.txt"), b"out").unwrap();
    symlink(outside.join("secret.txt"), read.join("leak.txt")).unwrap();
    symlink(&outside, read.join("leakdir")).unwrap();
    symlink(read.join("sub/inside.txt"), read.join("alias.txt")).unwrap();

    let dirs = vec![read.clone()];
    let canonical_dirs: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .collect();
    let check = |file_path: &str| -> Result<PathBuf, u32> {
        let lexical = resolve(&dirs, file_path)?;
        let canonical = std::fs::canonicalize(&lexical).map_err(|_| 11u32)?;
        check_canonical(&canonical_dirs, &canonical).map_err(|e| e.code(Api::Upload))?;
        Ok(canonical)
    };
    assert!(check("sub/inside.txt").is_ok());
    assert!(check("alias.txt").is_ok());
    assert_eq!(check("leak.txt"), Err(13));
    assert_eq!(check("leakdir/secret.txt"), Err(13));
    assert_eq!(check("missing.txt"), Err(11));
    let absolute = outside.join("secret.txt");
    assert_eq!(check(absolute.to_str().unwrap()), Err(13));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn readable_dirs_add_the_temp_folder_last() {
    let ctx = AppContext::builder("app", "1")
        .allow_any_origin()
        .read_dir("/data/files")
        .temp_dir("/data/tmp")
        .build()
        .unwrap();
    assert_eq!(
        readable_dirs(&ctx),
        vec![PathBuf::from("/data/files"), PathBuf::from("/data/tmp")]
    );
    let only_temp = AppContext::builder("app", "1")
        .allow_any_origin()
        .temp_dir("/data/tmp")
        .read_dir("/data/tmp")
        .build()
        .unwrap();
    assert_eq!(readable_dirs(&only_temp), vec![PathBuf::from("/data/tmp")]);
}

#[test]
fn download_extension_table() {
    let table: &[(&str, Option<&str>, Option<&str>)] = &[
        (
            "/tfs/TB1x669SXXXXXbdaFXXXXXXXXXX-520-280.jpg",
            None,
            Some("jpg"),
        ),
        ("/a/b.JPEG", None, Some("jpeg")),
        ("/a/b.tar.gz", Some("application/gzip"), Some("gz")),
        ("/x.json", Some("image/png"), Some("json")),
        ("/download", Some("image/png"), Some("png")),
        ("/download", Some("image/jpeg; charset=binary"), Some("jpg")),
        ("/download", Some(" IMAGE/GIF "), Some("gif")),
        ("/download", Some("image/webp"), Some("webp")),
        ("/download", Some("image/svg+xml"), Some("svg")),
        ("/", Some("text/plain;charset=utf-8"), Some("txt")),
        ("/", Some("text/html"), Some("html")),
        ("/", Some("application/json"), Some("json")),
        ("/", Some("application/pdf"), Some("pdf")),
        ("/", Some("application/zip"), Some("zip")),
        ("/", Some("audio/mpeg"), Some("mp3")),
        ("/", Some("video/mp4"), Some("mp4")),
        ("/", Some("application/octet-stream"), Some("bin")),
        ("/x.verylongext", Some("application/pdf"), Some("pdf")),
        ("/x.abcdefgh", None, Some("abcdefgh")),
        ("/x.a-b", Some("application/json"), Some("json")),
        ("/x.%2e%2e", None, None),
        ("/x.j%70g", None, None),
        ("/.hidden", None, None),
        ("/x.", Some("application/zip"), Some("zip")),
        ("/a.b/c", Some("audio/mpeg"), Some("mp3")),
        ("/a.b/", None, None),
        ("/download", None, None),
        ("/download", Some("application/x-custom"), None),
        ("/download", Some(""), None),
    ];
    for (path, ct, want) in table {
        assert_eq!(
            download_extension(path, *ct).as_deref(),
            *want,
            "{path} {ct:?}"
        );
    }
    assert_eq!(url_extension("/a/B.PnG").as_deref(), Some("png"));
    assert_eq!(content_type_extension("text/plain"), Some("txt"));
}

#[test]
fn download_paths_stay_in_the_temp_folder() {
    let temp = Path::new("/data/tmp");
    for (path, ct) in [
        ("/../../etc/passwd", None),
        ("/a/..%2F..%2Fx.sh", Some("text/plain")),
        ("/x.jpg", Some("image/jpeg")),
        ("/", None),
    ] {
        let (part, done) = download_paths(temp, path, ct, u64::MAX);
        assert_eq!(part.parent(), Some(temp), "{path}");
        assert_eq!(done.parent(), Some(temp), "{path}");
        assert_ne!(part, done);
        let part_name = part.file_name().unwrap().to_str().unwrap();
        assert!(part_name.starts_with('.') && part_name.ends_with(".part"));
        let done_name = done.file_name().unwrap().to_str().unwrap();
        assert!(
            done_name.starts_with("mpnet-ffffffffffffffff"),
            "{done_name}"
        );
        assert!(done_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    }
    let (a, _) = download_paths(temp, "/x", None, 1);
    let (b, _) = download_paths(temp, "/x", None, 2);
    assert_ne!(a, b, "distinct unique numbers give distinct files");
    let (_, no_ext) = download_paths(temp, "/download", None, 1);
    assert_eq!(no_ext, Path::new("/data/tmp/mpnet-0000000000000001"));
}
