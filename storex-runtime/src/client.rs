//! The browser client (storex.js), embedded in the library so every endpoint can serve it.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

/// The source of `storex.js`, the ES module served at `<path>/storex.js`.
pub const SOURCE: &str = include_str!("../js/storex.js");

/// A strong ETag of [`SOURCE`]: it changes whenever the file does.
///
/// ```
/// let etag = storex::client::etag();
/// assert!(etag.starts_with('"') && etag.ends_with('"'));
/// assert!(storex::client::matches_etag(&format!("\"other\", {etag}")));
/// ```
pub fn etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| {
        let mut hasher = DefaultHasher::new();
        SOURCE.hash(&mut hasher);
        format!("\"{:016x}-{}\"", hasher.finish(), SOURCE.len())
    })
}

/// Whether an `If-None-Match` header's value names the current [`SOURCE`] (or is `*`): the
/// client the browser holds is fresh (answer 304).
pub fn matches_etag(if_none_match: &str) -> bool {
    let etag = etag();
    if_none_match
        .split(',')
        .any(|tag| tag.trim() == etag || tag.trim() == "*")
}
