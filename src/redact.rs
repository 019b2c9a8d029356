//! Secret redaction for text that comes back from servers and child processes.
//!
//! tradewarden never writes a credential itself, but servers echo what they were sent: a proxy
//! error page listing the request headers (`APCA-API-SECRET-KEY: ...`), an SMTP server
//! answering `535 bad credentials AHVzZXIAcGFzcw==`. That text becomes error messages, which
//! go to stdout, the report files, alerts, emails, the outbox, the journal and the status
//! server. So every secret value is registered here where it is loaded, and every external
//! text is passed through [`redact`] at the boundary where it enters, before anything can
//! store, print, serve or send it.
//!
//! The registry is process-wide and only grows: redacting a value that a later configuration
//! no longer uses costs nothing, and missing one leaks it. This module depends on nothing in
//! the crate (a leaf), so every boundary can use it.

use std::sync::{PoisonError, RwLock};

/// What replaces a secret.
pub const MARK: &str = "[redacted]";

/// Values shorter than this are not redacted as substrings: a two-letter user name would turn
/// every message into confetti. Credentials this short are not secrets in any real sense.
pub const MIN_LEN: usize = 4;

/// URL path segments and query values shorter than this are words (`ping`, `check`), not tokens.
pub const URL_PART_MIN_LEN: usize = 8;

/// A set of secret values and the forms they take on the wire.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Every needle, longest first, so a value inside a longer registered form (`pass` inside
    /// the AUTH PLAIN blob's plain text) never leaves a partial secret behind.
    needles: Vec<String>,
}

impl Redactor {
    /// An empty redactor.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, needle: String) {
        if needle.chars().count() >= MIN_LEN && !self.needles.contains(&needle) {
            self.needles.push(needle);
            self.needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        }
    }

    /// Registers a secret: the value as given and trimmed, its base64 form (AUTH LOGIN sends
    /// `base64(user)` and `base64(pass)`; Basic auth and logs of raw frames show base64), and
    /// its percent-encoded form (a token in a URL).
    pub fn add_secret(&mut self, value: &str) {
        for v in [value, value.trim()] {
            if v.chars().count() < MIN_LEN {
                continue;
            }
            self.push(v.to_owned());
            self.push(base64(v.as_bytes()));
            // Without the padding too: an echo may drop or escape it.
            self.push(base64(v.as_bytes()).trim_end_matches('=').to_owned());
            self.push(percent_encode(v));
        }
    }

    /// Registers SMTP credentials: each value (see [`add_secret`](Self::add_secret)) and the
    /// AUTH PLAIN blobs `base64("\0user\0pass")` and `base64("user\0user\0pass")` (the
    /// password's own base64 does not occur inside them: base64 works on 3-byte groups).
    pub fn add_smtp_login(&mut self, user: &str, password: &str) {
        self.add_secret(user);
        self.add_secret(password);
        for authz in ["", user] {
            let plain = format!("{authz}\0{user}\0{password}");
            let b = base64(plain.as_bytes());
            self.push(b.trim_end_matches('=').to_owned());
            self.push(b);
        }
    }

    /// Registers the secret parts of a URL: the userinfo password, every path segment and
    /// every query value (a healthchecks-style URL is `https://host/<uuid>` or `?token=...`).
    /// The host and scheme are not secret.
    pub fn add_url_tokens(&mut self, url: &str) {
        let Some((_, rest)) = url.split_once("://") else {
            self.add_secret(url);
            return;
        };
        let (authority, tail) = rest.find(['/', '?', '#']).map_or((rest, ""), |i| rest.split_at(i));
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            self.add_secret(user);
            self.add_secret(pass);
        }
        if tail.chars().count() >= MIN_LEN {
            self.add_secret(tail);
        }
        // Only long parts: `ping` or `api` are words, a token is a UUID or a long string.
        for part in tail.split(['/', '?', '&', '#', '=', ';']).filter(|p| p.chars().count() >= URL_PART_MIN_LEN) {
            self.add_secret(part);
        }
    }

    /// `text` with every registered form of every secret replaced by [`MARK`].
    #[must_use]
    pub fn redact(&self, text: &str) -> String {
        let out = self.replace_needles(text.to_owned());
        // An echo inside JSON may escape any character of a secret (`\/` from PHP's encoder,
        // `\u002b`, `\u003c` from Go's): no list of escaped forms is complete, so the text is
        // read with its escapes undone, and when a secret shows there, the unescaped text is
        // what is kept, redacted. (Its escaping is lost; the secret never leaves.)
        if out.contains('\\') {
            let unescaped = unescape_json(&out);
            if self.needles.iter().any(|n| unescaped.contains(n.as_str())) {
                return self.replace_needles(unescaped);
            }
        }
        out
    }

    fn replace_needles(&self, mut out: String) -> String {
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), MARK);
            }
        }
        out
    }

    /// True when nothing is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}

static GLOBAL: RwLock<Redactor> = RwLock::new(Redactor { needles: Vec::new() });

fn with_global<T>(f: impl FnOnce(&mut Redactor) -> T) -> T {
    // A panic while holding the lock cannot leave the list half-updated in a way that
    // matters (a push is atomic enough), so a poisoned lock is still used.
    f(&mut GLOBAL.write().unwrap_or_else(PoisonError::into_inner))
}

/// Registers a secret process-wide (see [`Redactor::add_secret`]).
pub fn add_secret(value: &str) {
    with_global(|r| r.add_secret(value));
}

/// Registers SMTP credentials process-wide (see [`Redactor::add_smtp_login`]).
pub fn add_smtp_login(user: &str, password: &str) {
    with_global(|r| r.add_smtp_login(user, password));
}

/// Registers a URL's tokens process-wide (see [`Redactor::add_url_tokens`]).
pub fn add_url_tokens(url: &str) {
    with_global(|r| r.add_url_tokens(url));
}

/// `text` with every registered secret replaced by [`MARK`].
#[must_use]
pub fn redact(text: &str) -> String {
    let r = GLOBAL.read().unwrap_or_else(PoisonError::into_inner);
    if r.is_empty() { text.to_owned() } else { r.redact(text) }
}

/// `text` with JSON string escapes undone wherever they occur (`\/`, `\"`, `\\`, `\n`, ...,
/// `\uXXXX` with surrogate pairs); anything that is not a valid escape is kept as it is.
fn unescape_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let simple = match after.as_bytes().first() {
            Some(b'/') => Some('/'),
            Some(b'"') => Some('"'),
            Some(b'\\') => Some('\\'),
            Some(b'n') => Some('\n'),
            Some(b'r') => Some('\r'),
            Some(b't') => Some('\t'),
            Some(b'b') => Some('\u{8}'),
            Some(b'f') => Some('\u{c}'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            rest = &after[1..];
            continue;
        }
        match unicode_escape(after) {
            Some((c, used)) => {
                out.push(c);
                rest = &after[used..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `uXXXX` (or a surrogate pair `uD83D\uDE00`) at the start of `s`: the char and the bytes used.
fn unicode_escape(s: &str) -> Option<(char, usize)> {
    let hex = |s: &str| -> Option<u32> {
        let h = s.strip_prefix('u')?.get(..4)?;
        if h.bytes().all(|b| b.is_ascii_hexdigit()) { u32::from_str_radix(h, 16).ok() } else { None }
    };
    let first = hex(s)?;
    if (0xD800..0xDC00).contains(&first) {
        let low = hex(s.get(5..)?.strip_prefix('\\')?)?;
        if (0xDC00..0xE000).contains(&low) {
            let c = char::from_u32(0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00))?;
            return Some((c, 11));
        }
        return None;
    }
    char::from_u32(first).map(|c| (c, 5))
}

/// Standard base64 with padding (RFC 4648 §4), as SMTP AUTH uses.
#[must_use]
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn a_broker_error_body_echoing_the_key_headers_is_redacted() {
        let mut r = Redactor::new();
        r.add_secret("PKSECRETKEYID0042");
        r.add_secret("sk-Z9q/SECRET+value==");
        let body = "bad gateway; request headers: APCA-API-KEY-ID: PKSECRETKEYID0042\r\n\
                    APCA-API-SECRET-KEY: sk-Z9q/SECRET+value== (url-encoded sk-Z9q%2FSECRET%2Bvalue%3D%3D)";
        let out = r.redact(body);
        assert!(!out.contains("PKSECRETKEYID0042") && !out.contains("sk-Z9q"), "{out}");
        assert!(out.contains("APCA-API-KEY-ID: [redacted]"), "{out}");
    }

    #[test]
    fn an_smtp_535_echoing_auth_plain_and_auth_login_is_redacted() {
        let mut r = Redactor::new();
        r.add_smtp_login("alerts@example.test", "hunter2-SMTP-pass");
        let plain = base64(b"\0alerts@example.test\0hunter2-SMTP-pass");
        let login_user = base64(b"alerts@example.test");
        let login_pass = base64(b"hunter2-SMTP-pass");
        let reply =
            format!("535 5.7.8 rejected AUTH PLAIN {plain} / LOGIN {login_user} {login_pass} for hunter2-SMTP-pass");
        let out = r.redact(&reply);
        for secret in [plain.as_str(), login_user.as_str(), login_pass.as_str(), "hunter2-SMTP-pass", "alerts@example"]
        {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(out.starts_with("535 5.7.8 rejected AUTH PLAIN [redacted]"), "{out}");
    }

    #[test]
    fn url_tokens_are_redacted_but_the_host_is_kept() {
        let mut r = Redactor::new();
        r.add_url_tokens("https://user:pw-9z8y@hc.example.test/ping/0f1e2d3c-uuid?token=tok-abcdef");
        let out = r.redact("GET https://hc.example.test/ping/0f1e2d3c-uuid?token=tok-abcdef failed; pw-9z8y");
        assert!(out.contains("hc.example.test"), "{out}");
        for s in ["0f1e2d3c-uuid", "tok-abcdef", "pw-9z8y"] {
            assert!(!out.contains(s), "{s} in {out}");
        }
    }

    #[test]
    fn short_values_are_not_redacted_and_text_without_secrets_is_unchanged() {
        let mut r = Redactor::new();
        r.add_secret("ab");
        assert!(r.is_empty());
        r.add_secret("a-long-secret");
        assert_eq!(r.redact("nothing to see: about a bus"), "nothing to see: about a bus");
    }

    /// review2: a proxy whose JSON encoder escapes `/` (PHP's `json_encode`) or writes `+` as
    /// `\u002b` echoes the secret in a body the client does not parse as Alpaca's error
    /// (no `code`/`message`): the raw text is redacted only of the literal, base64 and
    /// percent-encoded forms, so the JSON-escaped one is stored and printed as is.
    #[test]
    fn a_json_escaped_echo_of_a_secret_is_redacted() {
        let mut r = Redactor::new();
        r.add_secret("sec-ECHO/x+Y9z=LEAK-4471");
        let body = r#"{"error":"bad gateway","headers":{"APCA-API-SECRET-KEY":"sec-ECHO\/x+Y9z=LEAK-4471"}}"#;
        let out = r.redact(body);
        assert!(!out.contains("LEAK-4471"), "{out}");
        assert!(out.contains(MARK) && out.contains("bad gateway"), "{out}");
        // Every other escaping an encoder may choose, mixed: `\u002b`, `\u002F`, Go's `\u003c`.
        r.add_secret("p<ss/w+rd-9931");
        for echo in [r"p\u003css\/w\u002brd-9931", r"p\u003Css\u002Fw+rd-9931", r"\u0070<ss/w+rd-9931"] {
            let out = r.redact(&format!(r#"{{"echo":"{echo}"}}"#));
            assert!(!out.contains("9931"), "{echo} -> {out}");
        }
    }

    #[test]
    fn text_with_escapes_but_no_secret_keeps_its_escapes() {
        let mut r = Redactor::new();
        r.add_secret("a-long-secret");
        let body = r#"{"path":"a\/b","emoji":"\ud83d\ude00","bad":"\uZZZZ \x"}"#;
        assert_eq!(r.redact(body), body);
        assert_eq!(
            unescape_json(r#"\ud83d\ude00 \u00e9 \uD800 \"q\" \\ \/ \uZZ"#),
            "\u{1F600} é \\uD800 \"q\" \\ / \\uZZ"
        );
    }
}
