//! Typed options of `my.uploadFile` (SPEC §5) and `my.downloadFile` (SPEC
//! §6), with builders, and their JSON bridge (SPEC §8): camelCase names,
//! unknown keys ignored, `null` counts as absent, a wrong type is error 2.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::bridge::{parse_object, BridgeError, Fields};
use crate::{Error, ErrorKind};

/// The whole-upload timeout (SPEC §5: 30 s, not settable).
pub const UPLOAD_TIMEOUT: Duration = Duration::from_millis(30_000);

/// Default `timeout` of `my.downloadFile` (SPEC §6: 60000 ms, an extension).
pub const DEFAULT_DOWNLOAD_TIMEOUT: Duration = Duration::from_millis(60_000);

/// The `fileType` option of `my.uploadFile` (SPEC §5). It is accepted and
/// kept, but the file part's content type comes from the file's extension
/// alone (SPEC §5: an `image` with an unknown extension is sent as
/// `application/octet-stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    /// `image`.
    Image,
    /// `video`.
    Video,
    /// `audio`.
    Audio,
}

impl FileType {
    /// The option's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Image => "image",
            FileType::Video => "video",
            FileType::Audio => "audio",
        }
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FileType {
    type Err = Error;
    /// `image`, `video`, `audio`, ASCII case-insensitive; anything else is
    /// error 2.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "image" => Ok(FileType::Image),
            "video" => Ok(FileType::Video),
            "audio" => Ok(FileType::Audio),
            _ => Err(Error::invalid(format!(
                "fileType {s:?} is not supported: use image, video or audio"
            ))),
        }
    }
}

/// The options of one `my.uploadFile` call (SPEC §5).
///
/// There is no timeout field: the upload's timeout is [`UPLOAD_TIMEOUT`].
///
/// ```
/// use mpnet_core::transfer::{FileType, UploadOptions};
/// let opts = UploadOptions::new("https://api.example.com/upload", "photos/a.jpg", "file")
///     .file_type(FileType::Image)
///     .header("X-Token", "abc")
///     .form_field("user", serde_json::json!("alice"))
///     .form_field("n", serde_json::json!(1));
/// assert_eq!(opts.form_data.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UploadOptions {
    /// The URL (required).
    pub url: String,
    /// Where the file is (required): relative to the app context's first
    /// read folder, or absolute inside one of them (see [`super::sandbox`]).
    pub file_path: String,
    /// The form field name of the file part (required, non-empty).
    pub file_name: String,
    /// `image`, `video` or `audio`, if given.
    pub file_type: Option<FileType>,
    /// Accepted, no effect in a library (SPEC §5).
    pub hide_loading: bool,
    /// Request headers, in order. A caller's `content-type` is replaced by
    /// the multipart one.
    pub header: Vec<(String, String)>,
    /// Extra form fields, sent before the file in JavaScript property order
    /// (SPEC §5), each value printed as SPEC §4 prints query values.
    pub form_data: Map<String, Value>,
}

impl UploadOptions {
    /// Options to upload `file_path` under the form field `file_name` to
    /// `url`, with every default.
    pub fn new(
        url: impl Into<String>,
        file_path: impl Into<String>,
        file_name: impl Into<String>,
    ) -> Self {
        UploadOptions {
            url: url.into(),
            file_path: file_path.into(),
            file_name: file_name.into(),
            file_type: None,
            hide_loading: false,
            header: Vec::new(),
            form_data: Map::new(),
        }
    }
    /// Sets the `fileType`.
    pub fn file_type(mut self, file_type: FileType) -> Self {
        self.file_type = Some(file_type);
        self
    }
    /// Sets `hideLoading`.
    pub fn hide_loading(mut self, hide: bool) -> Self {
        self.hide_loading = hide;
        self
    }
    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.header.push((name.into(), value.into()));
        self
    }
    /// Adds (or replaces, keeping its position) one form field.
    pub fn form_field(mut self, name: impl Into<String>, value: Value) -> Self {
        self.form_data.insert(name.into(), value);
        self
    }
    /// Replaces all form fields.
    pub fn form_data(mut self, form_data: Map<String, Value>) -> Self {
        self.form_data = form_data;
        self
    }
}

/// The options of one `my.downloadFile` call (SPEC §6).
///
/// ```
/// use std::time::Duration;
/// use mpnet_core::transfer::DownloadOptions;
/// let opts = DownloadOptions::new("https://img.example.com/a.jpg")
///     .timeout(Duration::from_secs(5));
/// assert_eq!(opts.timeout, Duration::from_secs(5));
/// assert_eq!(DownloadOptions::new("https://x/").timeout, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadOptions {
    /// The URL (required).
    pub url: String,
    /// Request headers, in order.
    pub header: Vec<(String, String)>,
    /// The whole download's timeout, first byte sent to last byte received
    /// (default [`DEFAULT_DOWNLOAD_TIMEOUT`]).
    pub timeout: Duration,
}

impl DownloadOptions {
    /// Options to download `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        DownloadOptions {
            url: url.into(),
            header: Vec::new(),
            timeout: DEFAULT_DOWNLOAD_TIMEOUT,
        }
    }
    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.header.push((name.into(), value.into()));
        self
    }
    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Parses the options of `my.uploadFile` (SPEC §5, §8).
///
/// `url`, `filePath` and `fileName` are required strings (missing: error 2);
/// `fileType` is `image`/`video`/`audio`; `hideLoading` a boolean; `header`
/// (or `headers` when `header` is absent) an object of strings; `formData`
/// an object of any JSON values. A `timeout` (not `null`) is error 12: the
/// upload timeout is 30 s and cannot be set (SPEC §5).
///
/// ```
/// use mpnet_core::{Api, bridge::BridgeError, transfer::upload_options};
/// let o = upload_options(r#"{"url":"https://a/u","filePath":"a.jpg","fileName":"file",
///     "fileType":"image","formData":{"k":"v"}}"#).unwrap();
/// assert_eq!(o.file_name, "file");
/// let Err(BridgeError::Options(e)) =
///     upload_options(r#"{"url":"https://a/u","filePath":"a","fileName":"f","timeout":1}"#)
/// else { panic!() };
/// assert_eq!(e.code(Api::Upload), 12);
/// ```
pub fn upload_options(text: &str) -> Result<UploadOptions, BridgeError> {
    let map = parse_object(text)?;
    Ok(upload_options_from(&map)?)
}

/// [`upload_options`] on an already parsed object.
pub fn upload_options_from(map: &Map<String, Value>) -> Result<UploadOptions, Error> {
    let f = Fields(map);
    let mut opts = UploadOptions::new(
        f.required_string("url")?,
        f.required_string("filePath")?,
        f.required_string("fileName")?,
    );
    if let Some(t) = f.string("fileType")? {
        opts.file_type = Some(t.parse()?);
    }
    opts.hide_loading = f.bool("hideLoading")?.unwrap_or(false);
    opts.header = f.string_map(&["header", "headers"])?;
    match map.get("formData") {
        None | Some(Value::Null) => {}
        Some(Value::Object(form)) => opts.form_data = form.clone(),
        Some(_) => return Err(Error::invalid("formData must be an object")),
    }
    if map.get("timeout").is_some_and(|v| !v.is_null()) {
        // SPEC §5: "30 s for the whole upload, not settable: passing it is
        // error 12". `Unknown` is the kind the upload table reports as 12
        // without claiming a network failure or a timeout happened.
        return Err(Error::new(
            ErrorKind::Unknown,
            "timeout cannot be set for uploadFile: the upload timeout is 30000 ms",
        ));
    }
    Ok(opts)
}

/// Parses the options of `my.downloadFile` (SPEC §6, §8): `url` (required),
/// `header` (or `headers` when `header` is absent), `timeout` in ms (a
/// number >= 0; `0` or absent gives 60000).
///
/// ```
/// let o = mpnet_core::transfer::download_options(
///     r#"{"url":"https://img.example.com/a.jpg","header":{"X-A":"1"},"timeout":1500}"#,
/// ).unwrap();
/// assert_eq!(o.timeout.as_millis(), 1500);
/// ```
pub fn download_options(text: &str) -> Result<DownloadOptions, BridgeError> {
    let map = parse_object(text)?;
    Ok(download_options_from(&map)?)
}

/// [`download_options`] on an already parsed object.
pub fn download_options_from(map: &Map<String, Value>) -> Result<DownloadOptions, Error> {
    let f = Fields(map);
    let mut opts = DownloadOptions::new(f.required_string("url")?);
    opts.header = f.string_map(&["header", "headers"])?;
    opts.timeout = f.timeout("timeout", DEFAULT_DOWNLOAD_TIMEOUT)?;
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Api;

    fn upload_code(text: &str) -> u32 {
        match upload_options(text) {
            Err(BridgeError::Options(e)) => e.code(Api::Upload),
            other => panic!("expected an options error for {text}, got {other:?}"),
        }
    }

    #[test]
    fn upload_fields_are_read() {
        let o = upload_options(
            r#"{"url":"https://a/u","filePath":"x/a.png","fileName":"file","fileType":"VIDEO",
                "hideLoading":true,"header":{"X-A":"1"},"formData":{"b":1,"a":{"c":[1]}},
                "success":null,"timeout":null,"extra":[1]}"#,
        )
        .unwrap();
        assert_eq!(o.file_type, Some(FileType::Video));
        assert!(o.hide_loading);
        assert_eq!(o.header, vec![("X-A".to_string(), "1".to_string())]);
        assert_eq!(
            o.form_data.keys().collect::<Vec<_>>(),
            vec!["b", "a"],
            "property order is kept"
        );
    }

    #[test]
    fn upload_bad_options_are_2_and_timeout_is_12() {
        for text in [
            r#"{"filePath":"a","fileName":"f"}"#,
            r#"{"url":"https://a","fileName":"f"}"#,
            r#"{"url":"https://a","filePath":"a"}"#,
            r#"{"url":"https://a","filePath":1,"fileName":"f"}"#,
            r#"{"url":"https://a","filePath":"a","fileName":"f","fileType":"pdf"}"#,
            r#"{"url":"https://a","filePath":"a","fileName":"f","hideLoading":"yes"}"#,
            r#"{"url":"https://a","filePath":"a","fileName":"f","header":{"a":1}}"#,
            r#"{"url":"https://a","filePath":"a","fileName":"f","formData":"k=v"}"#,
            r#"{"url":"https://a","filePath":"a","fileName":"f","formData":[1]}"#,
        ] {
            assert_eq!(upload_code(text), 2, "{text}");
        }
        for text in [
            r#"{"url":"https://a","filePath":"a","fileName":"f","timeout":30000}"#,
            r#"{"url":"https://a","filePath":"a","fileName":"f","timeout":"x"}"#,
        ] {
            assert_eq!(upload_code(text), 12, "{text}");
        }
    }

    #[test]
    fn download_fields_are_read() {
        let o = download_options(r#"{"url":"https://a/f.zip","headers":{"X":"y"}}"#).unwrap();
        assert_eq!(o.header, vec![("X".to_string(), "y".to_string())]);
        assert_eq!(o.timeout, DEFAULT_DOWNLOAD_TIMEOUT);
        let o = download_options(r#"{"url":"https://a/f.zip","timeout":0}"#).unwrap();
        assert_eq!(o.timeout, DEFAULT_DOWNLOAD_TIMEOUT);
        for text in [
            r#"{}"#,
            r#"{"url":1}"#,
            r#"{"url":"https://a","timeout":-1}"#,
            r#"{"url":"https://a","header":[]}"#,
        ] {
            match download_options(text) {
                Err(BridgeError::Options(e)) => assert_eq!(e.code(Api::Download), 2, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
