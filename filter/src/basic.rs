//! ingress-nginx basic authentication (`auth-type: basic`), as nginx's `auth_basic` checks it:
//! the `Authorization: Basic` credentials of a request against the users of an htpasswd file.
//! Pure: [`PasswordHash::parse`] reads one stored hash, [`credentials`] reads the header, and
//! [`PasswordHash::verify`] checks a password. Hash formats are those htpasswd and nginx know:
//! bcrypt (`$2y$`, `$2b$`, `$2a$`), Apache's MD5 (`$apr1$`) and MD5-crypt (`$1$`), SHA-crypt
//! (`$5$`, `$6$`, with or without `rounds=`), traditional DES crypt (13 characters, what
//! `htpasswd -d` and OpenSSL 1's `openssl passwd -crypt` write, as ingress-nginx's older e2e
//! tests did), `{SHA}`, `{SSHA}` (salted SHA-1) and `{PLAIN}`, as nginx's `auth_basic_user_file`.
//! Anything else never matches: its user cannot sign in.
//!
//! Every check is bounded, since it runs on the worker that serves every host: a bcrypt cost above
//! [`MAX_BCRYPT_COST`] or SHA-crypt rounds above [`MAX_SHA_CRYPT_ROUNDS`] (a hash that would hold
//! the worker for seconds per attempt) are not checked — their users cannot sign in, and the
//! control plane says so — and a SHA-crypt password longer than [`MAX_SHA_CRYPT_PASSWORD`] bytes
//! (its cost grows with the square of the length) never matches.
//!
//! Envoy's own `basic_auth` filter only knows `{SHA}`, hence this module; bcrypt, SHA-crypt, SHA-1
//! and MD5 come from their RustCrypto crates, DES crypt from `pwhash`, and only MD5-crypt's rounds (no maintained crate
//! builds for wasm and carries Apache's `$apr1$` variant) are written here, checked against
//! `openssl passwd`.

use base64::Engine as _;
use md5::{Digest as _, Md5};
use sha1::Sha1;

/// Highest bcrypt cost checked: htpasswd's default is 5; 14 is what ingress-nginx's own e2e test
/// writes (`bcrypt.GenerateFromPassword(password, 14)`), about a second per check, during which
/// the worker serves nothing else (as an nginx worker is held by `crypt`).
pub const MAX_BCRYPT_COST: u32 = 14;

/// Most SHA-crypt rounds checked (the default is 5 000).
pub const MAX_SHA_CRYPT_ROUNDS: usize = 100_000;

/// Longest password a SHA-crypt hash is checked against.
pub const MAX_SHA_CRYPT_PASSWORD: usize = 256;

/// One stored password hash, by format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$2y$…`, `$2b$…`, `$2a$…`: checked by the bcrypt crate.
    Bcrypt(String),
    /// `$apr1$salt$hash` (`apache: true`) or `$1$salt$hash`.
    Md5Crypt { apache: bool, salt: String, hash: String },
    /// `$5$[rounds=N$]salt$hash` (`bits: 256`) or `$6$…` (`bits: 512`); rounds as glibc clamps them.
    ShaCrypt { bits: u16, rounds: usize, salt: String, hash: String },
    /// Traditional DES crypt: 2 salt characters and 11 of hash; only the first 8 bytes of a
    /// password count (crypt(3)'s own limit, so `passwordX` matches `password`'s hash).
    Des(String),
    /// `{SHA}` + base64 of the SHA-1 of the password.
    Sha1([u8; 20]),
    /// `{SSHA}` + base64 of the SHA-1 of the password and the salt, then the salt (OpenLDAP's
    /// salted SHA, which nginx's `auth_basic_user_file` reads).
    SaltedSha1 { digest: [u8; 20], salt: Vec<u8> },
    /// `{PLAIN}` + the password.
    Plain(Vec<u8>),
    /// A format this filter does not check: never matches.
    Unsupported,
}

impl PasswordHash {
    /// Read a stored hash (the part after `user:` in an htpasswd line).
    pub fn parse(stored: &str) -> PasswordHash {
        if stored.starts_with("$2y$") || stored.starts_with("$2b$") || stored.starts_with("$2a$") {
            let cost = stored.get(4..6).and_then(|c| c.parse::<u32>().ok());
            return match cost {
                Some(cost) if cost <= MAX_BCRYPT_COST => PasswordHash::Bcrypt(stored.to_string()),
                _ => PasswordHash::Unsupported,
            };
        }
        for (magic, bits) in [("$5$", 256), ("$6$", 512)] {
            if let Some(rest) = stored.strip_prefix(magic) {
                return sha_crypt(bits, rest).unwrap_or(PasswordHash::Unsupported);
            }
        }
        for (magic, apache) in [("$apr1$", true), ("$1$", false)] {
            if let Some(rest) = stored.strip_prefix(magic) {
                return match rest.split_once('$') {
                    Some((salt, hash)) if salt.len() <= 8 && hash.len() == 22 => {
                        PasswordHash::Md5Crypt { apache, salt: salt.to_string(), hash: hash.to_string() }
                    }
                    _ => PasswordHash::Unsupported,
                };
            }
        }
        if let Some(digest) = stored.strip_prefix("{SHA}") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(digest).unwrap_or_default();
            return <[u8; 20]>::try_from(decoded.as_slice()).map_or(PasswordHash::Unsupported, PasswordHash::Sha1);
        }
        if let Some(encoded) = stored.strip_prefix("{SSHA}") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap_or_default();
            return match decoded.split_first_chunk::<20>() {
                Some((digest, salt)) => PasswordHash::SaltedSha1 { digest: *digest, salt: salt.to_vec() },
                None => PasswordHash::Unsupported,
            };
        }
        if let Some(plain) = stored.strip_prefix("{PLAIN}") {
            return PasswordHash::Plain(plain.as_bytes().to_vec());
        }
        if stored.len() == 13 && stored.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/') {
            return PasswordHash::Des(stored.to_string());
        }
        PasswordHash::Unsupported
    }

    /// Whether this format is checked (not [`PasswordHash::Unsupported`]).
    pub fn is_supported(&self) -> bool {
        *self != PasswordHash::Unsupported
    }

    /// Whether `password` is the one this hash was made from.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Bcrypt(stored) => bcrypt::verify(password, stored).unwrap_or(false),
            PasswordHash::Md5Crypt { apache, salt, hash } => {
                let magic = if *apache { "$apr1$" } else { "$1$" };
                same(md5_crypt(password, salt.as_bytes(), magic.as_bytes()).as_bytes(), hash.as_bytes())
            }
            PasswordHash::ShaCrypt { .. } if password.len() > MAX_SHA_CRYPT_PASSWORD => false,
            PasswordHash::ShaCrypt { bits: 256, rounds, salt, hash } => {
                let made = sha_crypt::Sha256Params::new(*rounds).and_then(|params| sha_crypt::sha256_crypt_b64(password, salt.as_bytes(), &params));
                made.is_ok_and(|made| same(made.as_bytes(), hash.as_bytes()))
            }
            PasswordHash::ShaCrypt { rounds, salt, hash, .. } => {
                let made = sha_crypt::Sha512Params::new(*rounds).and_then(|params| sha_crypt::sha512_crypt_b64(password, salt.as_bytes(), &params));
                made.is_ok_and(|made| same(made.as_bytes(), hash.as_bytes()))
            }
            PasswordHash::Des(stored) => pwhash::unix_crypt::verify(password, stored),
            PasswordHash::Sha1(digest) => same(&Sha1::digest(password), digest),
            PasswordHash::SaltedSha1 { digest, salt } => {
                let mut hasher = Sha1::new();
                hasher.update(password);
                hasher.update(salt);
                same(&hasher.finalize(), digest)
            }
            PasswordHash::Plain(plain) => same(password, plain),
            PasswordHash::Unsupported => false,
        }
    }
}

/// The part of a SHA-crypt hash after `$5$`/`$6$`: `[rounds=N$]salt$hash`, the salt cut to 16
/// characters and the rounds clamped to 1 000 as glibc does; `None` for a malformed hash or one
/// with more than [`MAX_SHA_CRYPT_ROUNDS`] rounds.
fn sha_crypt(bits: u16, rest: &str) -> Option<PasswordHash> {
    let (rounds, rest) = match rest.strip_prefix("rounds=") {
        Some(tail) => {
            let (rounds, rest) = tail.split_once('$')?;
            (rounds.parse::<usize>().ok()?.max(1000), rest)
        }
        None => (5000, rest),
    };
    let (salt, hash) = rest.split_once('$')?;
    let hash_length = if bits == 256 { 43 } else { 86 };
    let salt: String = salt.chars().take(16).collect();
    (rounds <= MAX_SHA_CRYPT_ROUNDS && hash.len() == hash_length && !salt.contains('$'))
        .then(|| PasswordHash::ShaCrypt { bits, rounds, salt, hash: hash.to_string() })
}

/// The filter-state key (Envoy reads it as `wasm.remote_user`) under which the filter leaves the
/// user of credentials basic auth let in, for the access log's `$remote_user`.
pub const REMOTE_USER_PROPERTY: &str = "remote_user";

/// `Authorization: Basic base64(user:password)` → (user, password); `None` for anything else.
pub fn credentials(authorization: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let text = std::str::from_utf8(authorization).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// The `WWW-Authenticate` value of a 401: nginx's `Basic realm="…"`.
pub fn challenge(realm: &str) -> String {
    format!("Basic realm=\"{}\"", realm.replace(['"', '\\'], ""))
}

/// Equal without an early exit on the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The 22 characters after `$salt$` of MD5-crypt (Poul-Henning Kamp's algorithm; Apache's
/// `$apr1$` differs only in the magic string).
fn md5_crypt(password: &[u8], salt: &[u8], magic: &[u8]) -> String {
    let alternate = Md5::new().chain_update(password).chain_update(salt).chain_update(password).finalize();
    let mut context = Md5::new().chain_update(password).chain_update(magic).chain_update(salt);
    for chunk in (0..password.len()).step_by(16) {
        context.update(&alternate[..(password.len() - chunk).min(16)]);
    }
    let mut length = password.len();
    while length > 0 {
        if length & 1 == 1 {
            context.update([0u8]);
        } else {
            context.update(&password[..1]);
        }
        length >>= 1;
    }
    let mut digest = context.finalize();
    for round in 0..1000 {
        let mut next = Md5::new();
        if round & 1 == 1 {
            next.update(password);
        } else {
            next.update(digest);
        }
        if round % 3 != 0 {
            next.update(salt);
        }
        if round % 7 != 0 {
            next.update(password);
        }
        if round & 1 == 1 {
            next.update(digest);
        } else {
            next.update(password);
        }
        digest = next.finalize();
    }
    const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let d = digest;
    let groups: [(u32, usize); 6] = [
        ((u32::from(d[0]) << 16) | (u32::from(d[6]) << 8) | u32::from(d[12]), 4),
        ((u32::from(d[1]) << 16) | (u32::from(d[7]) << 8) | u32::from(d[13]), 4),
        ((u32::from(d[2]) << 16) | (u32::from(d[8]) << 8) | u32::from(d[14]), 4),
        ((u32::from(d[3]) << 16) | (u32::from(d[9]) << 8) | u32::from(d[15]), 4),
        ((u32::from(d[4]) << 16) | (u32::from(d[10]) << 8) | u32::from(d[5]), 4),
        (u32::from(d[11]), 2),
    ];
    let mut out = String::with_capacity(22);
    for (mut value, count) in groups {
        for _ in 0..count {
            out.push(char::from(ALPHABET[(value & 0x3f) as usize]));
            value >>= 6;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_formats_verify_their_password_only() {
        // Made with `openssl passwd -apr1 -salt abcdefgh password`, `openssl passwd -1 -salt
        // xyz password` and `openssl sha1 -binary | base64`; bcrypt as `htpasswd -B` writes it
        // (`$2y$`, the same algorithm as the crate's `$2b$`).
        let bcrypt = bcrypt::hash("password", 4).unwrap_or_default().replacen("$2b$", "$2y$", 1);
        // SHA-crypt: `openssl passwd -5 -salt saltstring password`, `-6`, and `-6` with rounds.
        let rows = [
            "$5$saltstring$OH4IDuTlsuTYPdED1gsuiRMyTAwNlRWyA6Xr3I4/dQ5",
            "$6$saltstring$adDbXsJjcDlq2662QPgd.tkSOVmnG9Tt3oXl4HR60SusC3AGjirnDenVZp3DGwLwqy6iYKCzannhaX9DR72nN1",
            "$6$rounds=1000$abc$vw5PRczzmm7dyJhZWNpaLcy/M.HywGlo.UsELxKYV/ZI4356.iT3zYgbwHVzPSnvkT2lVlMoWMoJdUSLcmUNg.",
            "$apr1$abcdefgh$FBwExRW4dCc8aL.OvjpIE1",
            "$1$xyz$cEUv8aN9ehjhMXG/kSFnM1",
            "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
            // {SSHA}: base64(SHA-1("password" + "salt1234") + "salt1234").
            "{SSHA}rXVtWiPAY6/w8MuTLKIjpBjj2mtzYWx0MTIzNA==",
            "{PLAIN}password",
            bcrypt.as_str(),
            // DES crypt: glibc's `crypt("password", "xy")`.
            "xyAjYtmfRYx/.",
        ];
        assert!(bcrypt.starts_with("$2y$04$"), "{bcrypt}");
        for stored in rows {
            let hash = PasswordHash::parse(stored);
            assert!(hash.is_supported(), "{stored}");
            assert!(hash.verify(b"password"), "{stored} must accept its password");
            assert!(!hash.verify(b"Password"), "{stored} must refuse another");
            assert!(!hash.verify(b""), "{stored} must refuse an empty password");
        }
        let slow_bcrypt = bcrypt.replacen("$2y$04$", "$2y$15$", 1);
        assert!(PasswordHash::parse(&bcrypt.replacen("$2y$04$", "$2y$14$", 1)).is_supported(), "ingress-nginx's e2e cost is checked");
        let slow_sha = "$6$rounds=100001$abc$vw5PRczzmm7dyJhZWNpaLcy/M.HywGlo.UsELxKYV/ZI4356.iT3zYgbwHVzPSnvkT2lVlMoWMoJdUSLcmUNg.";
        for stored in ["abJnggxhB/yW", "abJnggxhB/yW!", "$6$salt$x", "$apr1$toolongsalt$FBwExRW4dCc8aL.OvjpIE1", "{SHA}short", "{SSHA}c2hvcnQ=", "", &slow_bcrypt, slow_sha, "$2y$xx$"] {
            let hash = PasswordHash::parse(stored);
            assert!(!hash.is_supported() && !hash.verify(b"password"), "{stored}");
        }
        let sha = PasswordHash::parse("$6$saltstring$adDbXsJjcDlq2662QPgd.tkSOVmnG9Tt3oXl4HR60SusC3AGjirnDenVZp3DGwLwqy6iYKCzannhaX9DR72nN1");
        assert!(!sha.verify(&[b'a'; MAX_SHA_CRYPT_PASSWORD + 1]), "a password too long to check is refused");
    }

    #[test]
    fn des_crypt_has_crypt_3s_quirks() {
        // glibc's crypt(3): only 8 bytes count, each by its low 7 bits.
        let rows: [(&[u8], &str, bool); 6] = [
            (b"secret", "abNANd1rDfiNc", true),
            (b"Secret", "abNANd1rDfiNc", false),
            (b"passwordextra", "xyAjYtmfRYx/.", true),
            (b"", "zz6dpSdr.LHZw", true),
            (b"x", "zz6dpSdr.LHZw", false),
            ("p\u{e4}ss".as_bytes(), "./Wrjs.Kc.GIM", true),
        ];
        for (password, stored, want) in rows {
            let hash = PasswordHash::parse(stored);
            assert!(matches!(hash, PasswordHash::Des(_)), "{stored}");
            assert_eq!(hash.verify(password), want, "{stored} with {password:?}");
        }
    }

    #[test]
    fn only_basic_credentials_are_read() {
        assert_eq!(credentials(b"Basic Zm9vOmJhcjpiYXo="), Some((b"foo".to_vec(), b"bar:baz".to_vec())));
        assert_eq!(credentials(b"basic   Zm9vOg=="), Some((b"foo".to_vec(), Vec::new())));
        assert_eq!(credentials(b"Bearer Zm9vOmJhcg=="), None);
        assert_eq!(credentials(b"Basic !!!"), None);
        assert_eq!(credentials(b"Basic Zm9v"), None, "no colon");
        assert_eq!(challenge("a \"quoted\" realm"), "Basic realm=\"a quoted realm\"");
    }
}
