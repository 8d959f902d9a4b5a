//! What a session keeps so that a client can take it back after its connection dropped
//! (PROTOCOL.md, "Versions and resume"): the settings, and the signed resume tokens.
//!
//! A token is `EXPIRY.MAC`: a Unix time in seconds and the HMAC-SHA256, under the endpoint's
//! resume key, of the session id and that time. Nothing in it can be computed from a session id
//! without the key.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How sessions outlive their connections; part of [`Config`](crate::Config).
#[derive(Clone)]
pub(crate) struct ResumeSettings {
    /// How long a detached session waits for its client; zero: sessions end with their connection.
    pub(crate) ttl: Duration,
    /// The key resume tokens are signed with.
    pub(crate) key: Arc<[u8]>,
    /// The most detached sessions kept at once.
    pub(crate) max_detached: usize,
    /// The most history bytes all detached sessions hold together.
    pub(crate) max_detached_bytes: usize,
    /// The most diffs an instance keeps for a resume.
    pub(crate) history_len: usize,
    /// The most bytes of diffs an instance keeps for a resume.
    pub(crate) history_bytes: usize,
    /// How many mutation answers a session remembers, for requests sent again after a resume.
    pub(crate) remembered_requests: usize,
}

impl std::fmt::Debug for ResumeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("ResumeSettings")
            .field("ttl", &self.ttl)
            .field("max_detached", &self.max_detached)
            .field("max_detached_bytes", &self.max_detached_bytes)
            .field("history_len", &self.history_len)
            .field("history_bytes", &self.history_bytes)
            .field("remembered_requests", &self.remembered_requests)
            .finish_non_exhaustive()
    }
}

impl Default for ResumeSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(120),
            key: process_key(),
            max_detached: 10_000,
            max_detached_bytes: 64 * 1024 * 1024,
            history_len: 64,
            history_bytes: 16 * 1024,
            remembered_requests: 256,
        }
    }
}

/// The random key of this process, made once: every config of the process signs with it unless
/// it is given its own.
fn process_key() -> Arc<[u8]> {
    static KEY: OnceLock<Arc<[u8]>> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        rand::fill(&mut key);
        Arc::from(key.as_slice())
    })
    .clone()
}

/// Why a resume token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// Not a token of this server for this session (malformed, forged, another session's).
    Invalid,
    /// A real token whose time has passed.
    Expired,
}

impl TokenError {
    /// The sentence the client is told (PROTOCOL.md).
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Invalid => "The resume token is not valid for this session.",
            Self::Expired => "The resume token has expired.",
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], session: &str, expiry: u64) -> HmacSha256 {
    // Any key length is valid for HMAC: `new_from_slice` cannot fail here.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(b"storex-resume\n");
    mac.update(expiry.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(session.as_bytes());
    mac
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// A token for `session`, valid until `expiry` (Unix seconds).
pub(crate) fn sign(key: &[u8], session: &str, expiry: u64) -> String {
    let tag = mac(key, session, expiry).finalize().into_bytes();
    let mut token = format!("{expiry}.");
    for byte in tag {
        token.push(char::from(HEX[usize::from(byte >> 4)]));
        token.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    token
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether `token` was signed with `key` for `session` and has not expired at `now`.
pub(crate) fn verify(key: &[u8], session: &str, token: &str, now: u64) -> Result<(), TokenError> {
    let (expiry, tag) = token.split_once('.').ok_or(TokenError::Invalid)?;
    if expiry.is_empty() || expiry.len() > 20 || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::Invalid);
    }
    let expiry: u64 = expiry.parse().map_err(|_| TokenError::Invalid)?;
    let tag = decode_hex(tag).ok_or(TokenError::Invalid)?;
    // `verify_slice` compares in constant time.
    mac(key, session, expiry)
        .verify_slice(&tag)
        .map_err(|_| TokenError::Invalid)?;
    if expiry < now {
        return Err(TokenError::Expired);
    }
    Ok(())
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    let digit = |c: u8| HEX.iter().position(|&h| h == c).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a key of the tests";

    #[test]
    fn a_token_is_accepted_for_its_session_until_it_expires() {
        let token = sign(KEY, "session-1", 1_000);
        assert_eq!(verify(KEY, "session-1", &token, 999), Ok(()));
        assert_eq!(verify(KEY, "session-1", &token, 1_000), Ok(()));
        assert_eq!(
            verify(KEY, "session-1", &token, 1_001),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn another_session_another_key_or_a_changed_token_is_invalid() {
        let token = sign(KEY, "session-1", 1_000);
        assert_eq!(
            verify(KEY, "session-2", &token, 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            verify(b"another key", "session-1", &token, 0),
            Err(TokenError::Invalid)
        );
        // A later expiry with the same tag: the tag covers the expiry.
        let (_, tag) = token.split_once('.').unwrap_or_default();
        assert_eq!(
            verify(KEY, "session-1", &format!("2000.{tag}"), 0),
            Err(TokenError::Invalid)
        );
        // An expired forgery is invalid, not expired: the tag is checked first.
        assert_eq!(
            verify(KEY, "session-1", &format!("5.{tag}"), 10),
            Err(TokenError::Invalid)
        );
        for junk in [
            "",
            ".",
            "1000",
            "1000.",
            "x.00",
            "-1.00",
            &format!("1000.{}", "0".repeat(64)),
            &format!("1000.{}", "g".repeat(64)),
            &format!("1000.{}é", "0".repeat(62)),
            &format!("{}.{tag}", "9".repeat(30)),
        ] {
            assert_eq!(
                verify(KEY, "session-1", junk, 0),
                Err(TokenError::Invalid),
                "{junk}"
            );
        }
    }

    #[test]
    fn tokens_of_two_sessions_share_nothing_but_the_expiry() {
        let a = sign(KEY, "session-1", 1_000);
        let b = sign(KEY, "session-2", 1_000);
        assert_ne!(a, b);
        assert!(a.starts_with("1000.") && a.len() == 5 + 64);
    }
}
