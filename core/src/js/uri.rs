//! `encodeURIComponent`.

/// Appends `s` encoded as `encodeURIComponent` does: only
/// `A-Z a-z 0-9 - _ . ! ~ * ' ( )` stay as they are; every other UTF-8 byte
/// becomes upper-case `%XX`.
pub fn encode_uri_component(s: &str, out: &mut String) {
    let _ = (s, out);
    todo!()
}
