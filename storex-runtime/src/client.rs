//! The browser client (storex.js), embedded in the library so every endpoint can serve it.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

/// The source of `storex.js`, the ES module served at `<path>/storex.js`.
pub const SOURCE: &str = include_str!("../js/storex.js");

/// The TypeScript declarations of the client (`storex.d.ts`).
pub const TYPES: &str = include_str!("../js/storex.d.ts");

/// A strong ETag of [`SOURCE`]: it changes whenever the file does.
///
/// ```
/// let etag = storex::client::etag();
/// assert!(etag.starts_with('"') && etag.ends_with('"'));
/// ```
pub fn etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| {
        let mut hasher = DefaultHasher::new();
        SOURCE.hash(&mut hasher);
        format!("\"{:016x}-{}\"", hasher.finish(), SOURCE.len())
    })
}
