//! ingress-nginx's digest authentication (`auth-type: digest`), as the nginx-http-auth-digest
//! module it builds in answers (`auth_digest` / `auth_digest_user_file`, the module's defaults):
//! RFC 2617 with MD5 and `qop="auth"`, users as htdigest lines `user:realm:HA1`.
//!
//! - A request without usable credentials gets 401 with [`challenge`]: a new nonce of 16 hex
//!   characters, which the filter records (see [`NonceRecord`]).
//! - The client's answer passes when its realm agrees with the route's (nginx compares the shorter
//!   length only), a user of that realm has it, its `uri` is the request's (or the request's up to
//!   its `?`, the module's allowance for .NET clients), [`response_matches`], and the nonce is one
//!   the filter issued, unexpired, with an `nc` below [`REPLAYS`] used once ([`use_nonce`]). A
//!   nonce lives [`NONCE_TIMEOUT_SECS`] until its first use, then [`NONCE_EXPIRES_SECS`]; after
//!   that the client gets the challenge with `stale="true"` (browsers then retry by themselves).
//! - A client address with [`MAX_TRIES`] failures in a row, the last less than
//!   [`EVASION_SECS`] ago, gets 401 without a challenge ([`Failures`]).
//! - A passing request's response carries `Authentication-Info` ([`authentication_info`]).
//!
//! Nonces and failure counts live in proxy-wasm shared data (one copy per Envoy process, as the
//! module's shared memory zone per nginx), in a bounded number of slots chosen by hash: a record
//! pushed out of its slot by another makes its nonce unknown, so its client is challenged again —
//! never let in. This module is pure; `host` reads and writes the slots.

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// `auth_digest_timeout`: seconds a nonce may wait for its first use.
pub const NONCE_TIMEOUT_SECS: u64 = 60;
/// `auth_digest_expires`: seconds a nonce stays usable after its first use.
pub const NONCE_EXPIRES_SECS: u64 = 10;
/// `auth_digest_replays`: `nc` values from 0 to this (excluded), each usable once per nonce.
pub const REPLAYS: u32 = 20;
/// `auth_digest_maxtries`: failures in a row after which a client address is refused unheard.
pub const MAX_TRIES: u32 = 5;
/// `auth_digest_evasion_time`: seconds after the last failure that refusal lasts.
pub const EVASION_SECS: u64 = 300;
/// Shared-data slots the nonce records are spread over.
pub const NONCE_SLOTS: u64 = 4096;
/// Shared-data slots the failure counts are spread over.
pub const CLIENT_SLOTS: u64 = 1024;
/// Length of a nonce: the module's `%08x%08x` of a random number and the time.
pub const NONCE_LEN: usize = 16;

/// The fields of an `Authorization: Digest …` header the check needs (all present, non-empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: Vec<u8>,
    pub realm: Vec<u8>,
    pub nonce: Vec<u8>,
    pub uri: Vec<u8>,
    pub qop: Vec<u8>,
    pub nc: Vec<u8>,
    pub cnonce: Vec<u8>,
    pub response: Vec<u8>,
}

/// The digest credentials of `authorization`, as the module reads them: scheme `Digest` (any
/// case), then `name=token` or `name="quoted \"string\""` pairs separated by commas; unknown names
/// ignored, a repeated one replaces the earlier; `None` when one of the needed fields is missing or
/// empty, the nonce is not [`NONCE_LEN`] long, or the header does not parse.
pub fn credentials(authorization: &[u8]) -> Option<Credentials> {
    let rest = authorization.trim_ascii_start();
    let space = rest.iter().position(|&b| b == b' ')?;
    let (scheme, mut rest) = rest.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"digest") {
        return None;
    }
    let mut found = Credentials::default();
    let mut ignored = Vec::new();
    rest = rest.trim_ascii_start();
    while !rest.is_empty() {
        let (name, value, tail) = parameter(rest)?;
        let field = match name.to_ascii_lowercase().as_slice() {
            b"username" => &mut found.username,
            b"realm" => &mut found.realm,
            b"nonce" => &mut found.nonce,
            b"uri" => &mut found.uri,
            b"qop" => &mut found.qop,
            b"nc" => &mut found.nc,
            b"cnonce" => &mut found.cnonce,
            b"response" => &mut found.response,
            _ => &mut ignored,
        };
        *field = value;
        rest = separators(tail)?;
    }
    let fields = [&found.username, &found.realm, &found.nonce, &found.uri, &found.qop, &found.nc, &found.cnonce, &found.response];
    (fields.iter().all(|f| !f.is_empty()) && found.nonce.len() == NONCE_LEN).then_some(found)
}

/// RFC 7230's `tchar`.
fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// One `name=value` at the start of `input`: name, unquoted value, what follows.
fn parameter(input: &[u8]) -> Option<(&[u8], Vec<u8>, &[u8])> {
    let name_end = input.iter().position(|&b| !token_char(b))?;
    let (name, rest) = input.split_at(name_end);
    let rest = rest.strip_prefix(b"=")?;
    if name.is_empty() {
        return None;
    }
    if let Some(quoted) = rest.strip_prefix(b"\"") {
        let mut value = Vec::new();
        let mut bytes = quoted.iter().enumerate();
        while let Some((i, &b)) = bytes.next() {
            match b {
                b'"' => return Some((name, value, &quoted[i + 1..])),
                b'\\' => value.push(*bytes.next()?.1),
                b if b < 0x20 || b == 0x7f => return None,
                b => value.push(b),
            }
        }
        return None;
    }
    let end = rest.iter().position(|&b| !token_char(b)).unwrap_or(rest.len());
    (end > 0).then(|| (name, rest[..end].to_vec(), &rest[end..]))
}

/// After a value: the end, or whitespace and at least one comma before the next name.
fn separators(input: &[u8]) -> Option<&[u8]> {
    let mut rest = input.trim_ascii_start();
    if rest.is_empty() {
        return Some(rest);
    }
    let mut commas = 0;
    while let Some(after) = rest.strip_prefix(b",") {
        commas += 1;
        rest = after.trim_ascii_start();
    }
    (commas > 0).then_some(rest)
}

/// nginx's realm check: the route's realm and the client's agree over the shorter length.
pub fn realm_matches(route_realm: &[u8], client_realm: &[u8]) -> bool {
    let n = route_realm.len().min(client_realm.len());
    route_realm[..n] == client_realm[..n]
}

/// The HA1 of a stored user entry (`realm:HA1`, an htdigest line without its user) for the
/// client's `realm`: the realm must be the same and the HA1 (up to a `:` or `#`) 32 characters.
pub fn ha1_for<'a>(stored: &'a [u8], realm: &[u8]) -> Option<&'a [u8]> {
    let colon = stored.iter().position(|&b| b == b':')?;
    let (line_realm, rest) = (&stored[..colon], &stored[colon + 1..]);
    if line_realm != realm || line_realm.contains(&b'#') {
        return None;
    }
    let end = rest.iter().position(|&b| b == b':' || b == b'#').unwrap_or(rest.len());
    (end == 32).then_some(&rest[..end])
}

/// Whether the credentials' `uri` is the request's `request_uri` (path and query as sent), or
/// the request's up to its `?`.
pub fn uri_matches(request_uri: &[u8], uri: &[u8]) -> bool {
    request_uri == uri || (request_uri.starts_with(uri) && request_uri.get(uri.len()) == Some(&b'?'))
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part);
    }
    md5.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `MD5(HA1:nonce:nc:cnonce:qop:HA2)` with `HA2 = MD5(a2)`.
fn digest(ha1: &[u8], credentials: &Credentials, a2: &[&[u8]]) -> String {
    let ha2 = md5_hex(a2);
    let c = credentials;
    md5_hex(&[ha1, b":", &c.nonce, b":", &c.nc, b":", &c.cnonce, b":", &c.qop, b":", ha2.as_bytes()])
}

/// Whether the client's `response` is the one `ha1` gives for `method` (compared in constant time).
pub fn response_matches(ha1: &[u8], method: &[u8], credentials: &Credentials) -> bool {
    let expected = digest(ha1, credentials, &[method, b":", &credentials.uri]);
    let (a, b) = (expected.as_bytes(), credentials.response.as_slice());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `Authentication-Info` of a passing request (`rspauth` with `HA2 = MD5(:uri)`).
pub fn authentication_info(ha1: &[u8], credentials: &Credentials) -> String {
    let rspauth = digest(ha1, credentials, &[b":", &credentials.uri]);
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    format!("qop=\"auth\", rspauth=\"{rspauth}\", cnonce=\"{}\", nc={}", text(&credentials.cnonce), text(&credentials.nc))
}

/// A new nonce: the module's `%08x%08x` of a random number and the time in seconds.
pub fn new_nonce(random: u64, now_secs: u64) -> String {
    format!("{:08x}{:08x}", random as u32, now_secs as u32)
}

/// The realm as the challenge quotes it: without `"` and `\\` (as basic's), so the header stays
/// one quoted string; the client's realm is compared with this.
pub fn realm(realm: &str) -> String {
    realm.replace(['"', '\\'], "")
}

/// The 401's `WWW-Authenticate` value for `realm` with `nonce`.
pub fn challenge(realm: &str, nonce: &str, stale: bool) -> String {
    let stale = if stale { ", stale=\"true\"" } else { "" };
    format!("Digest algorithm=\"MD5\", qop=\"auth\", realm=\"{}\", nonce=\"{nonce}\"{stale}", self::realm(realm))
}

/// What the filter keeps of a nonce it issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceRecord {
    pub nonce: [u8; NONCE_LEN],
    /// Host clock, seconds: unusable from then on.
    pub expires: u64,
    /// Whether it has been used (its lifetime is then [`NONCE_EXPIRES_SECS`] from that use).
    pub used_once: bool,
    /// Bit `nc` set: that `nc` has been used.
    pub used_nc: u32,
}

impl NonceRecord {
    /// The record of a nonce issued at `now`; `None` if `nonce` is not [`NONCE_LEN`] bytes.
    pub fn issued(nonce: &[u8], now: u64) -> Option<NonceRecord> {
        Some(NonceRecord { nonce: nonce.try_into().ok()?, expires: now.saturating_add(NONCE_TIMEOUT_SECS), used_once: false, used_nc: 0 })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.nonce.to_vec();
        out.extend_from_slice(&self.expires.to_le_bytes());
        out.push(u8::from(self.used_once));
        out.extend_from_slice(&self.used_nc.to_le_bytes());
        out
    }

    /// The record in a slot's `value`, if it is the one of `nonce`.
    pub fn decode(value: &[u8], nonce: &[u8]) -> Option<NonceRecord> {
        if value.len() != NONCE_LEN + 13 || &value[..NONCE_LEN] != nonce {
            return None;
        }
        let expires = u64::from_le_bytes(value[NONCE_LEN..NONCE_LEN + 8].try_into().ok()?);
        let used_nc = u32::from_le_bytes(value[NONCE_LEN + 9..].try_into().ok()?);
        Some(NonceRecord { nonce: nonce.try_into().ok()?, expires, used_once: value[NONCE_LEN + 8] == 1, used_nc })
    }
}

/// The verdict on a request's nonce and `nc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonceCheck {
    /// Good: the record to write back (this `nc` marked used).
    Fresh(NonceRecord),
    /// Expired, or an `nc` out of range: challenge again with `stale="true"`.
    Stale,
    /// Unknown (never issued, or pushed out of its slot) or an `nc` used before.
    Invalid,
}

/// The module's nonce rules for `nc` (hex) against `record` (the nonce's, if the slot has it).
pub fn use_nonce(record: Option<NonceRecord>, nc: &[u8], now: u64) -> NonceCheck {
    let Some(nc) = std::str::from_utf8(nc).ok().and_then(|nc| u32::from_str_radix(nc, 16).ok()).filter(|&nc| nc < REPLAYS) else {
        return NonceCheck::Stale;
    };
    let Some(mut record) = record else { return NonceCheck::Invalid };
    if record.expires <= now {
        return NonceCheck::Stale;
    }
    if record.used_nc & (1 << nc) != 0 {
        return NonceCheck::Invalid;
    }
    if !record.used_once {
        record.used_once = true;
        record.expires = now.saturating_add(NONCE_EXPIRES_SECS);
    }
    record.used_nc |= 1 << nc;
    NonceCheck::Fresh(record)
}

/// The shared-data key of the slot for `nonce`.
pub fn nonce_slot_key(nonce: &[u8]) -> String {
    format!("wasm-ingress/digest-nonce/{}", slot(nonce, NONCE_SLOTS))
}

/// The shared-data key of the slot counting `client`'s failures.
pub fn client_slot_key(client: &str) -> String {
    format!("wasm-ingress/digest-client/{}", slot(client.as_bytes(), CLIENT_SLOTS))
}

fn slot(bytes: &[u8], slots: u64) -> u64 {
    let hash = Sha256::digest(bytes);
    u64::from_le_bytes(hash[..8].try_into().unwrap_or_default()) % slots
}

/// A client address's failures in a row (the module's evasion tracking).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failures {
    pub count: u32,
    /// Host clock, seconds: the refusal (and the count) ends then.
    pub until: u64,
}

impl Failures {
    /// `count until client`, so a slot shared by two clients is told apart.
    pub fn encode(&self, client: &str) -> Vec<u8> {
        format!("{} {} {client}", self.count, self.until).into_bytes()
    }

    /// The failures in a slot's `value`, if they are `client`'s.
    pub fn decode(value: &[u8], client: &str) -> Option<Failures> {
        let text = std::str::from_utf8(value).ok()?;
        let mut parts = text.splitn(3, ' ');
        let (count, until, owner) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?);
        (owner == client).then_some(Failures { count, until })
    }

    /// Whether the client is refused unheard at `now`.
    pub fn evading(&self, now: u64) -> bool {
        self.count >= MAX_TRIES && now < self.until
    }

    /// After one more failure at `now` (a count past its window starts again at 1).
    pub fn failed(&self, now: u64) -> Failures {
        let count = if now > self.until { 1 } else { self.count.saturating_add(1) };
        Failures { count, until: now.saturating_add(EVASION_SECS) }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    // RFC 2617 §3.5's example: Mufasa / Circle Of Life in testrealm@host.com.
    const RFC_HA1: &[u8] = b"939e7578ed9e3c518a452acee763bce9";
    const RFC_HEADER: &[u8] = b"Digest username=\"Mufasa\", realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e\", \
        uri=\"/dir/index.html\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"0000\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

    fn rfc() -> Credentials {
        credentials(RFC_HEADER).unwrap()
    }

    #[test]
    fn credentials_are_read_as_the_module_reads_them() {
        let c = rfc();
        assert_eq!((c.username.as_slice(), c.realm.as_slice(), c.uri.as_slice()), (&b"Mufasa"[..], &b"testrealm@host.com"[..], &b"/dir/index.html"[..]));
        assert_eq!((c.qop.as_slice(), c.nc.as_slice(), c.cnonce.as_slice()), (&b"auth"[..], &b"00000001"[..], &b"0a4f113b"[..]));
        let escaped = credentials(b"digest  username=\"a\\\"b\" ,, realm=r,nonce=\"0123456789abcdef\",uri=\"/\",qop=auth,nc=1,cnonce=c,response=x").unwrap();
        assert_eq!(escaped.username, b"a\"b");
        let rows: [&[u8]; 7] = [
            b"Basic dXNlcjpwYXNz",
            b"Digest username=\"Mufasa\"",
            b"Digest username=\"\", realm=r, nonce=\"0123456789abcdef\", uri=\"/\", qop=auth, nc=1, cnonce=c, response=x",
            b"Digest username=a, realm=r, nonce=\"short\", uri=\"/\", qop=auth, nc=1, cnonce=c, response=x",
            b"Digest username=a realm=r",
            b"Digest username=\"unterminated",
            b"Digest",
        ];
        for header in rows {
            assert_eq!(credentials(header), None, "{:?}", String::from_utf8_lossy(header));
        }
    }

    #[test]
    fn the_response_is_rfc_2617s() {
        // RFC 2617's own example response for GET (its nonce is longer than the module's).
        let nonce = b"dcd98b7102dd2f0e8b11d0f600bfb0c093".to_vec();
        let c = Credentials { nonce, response: b"6629fae49393a05397450978507c4ef1".to_vec(), ..rfc() };
        assert!(response_matches(RFC_HA1, b"GET", &c));
        assert!(!response_matches(RFC_HA1, b"POST", &c), "the method is in HA2");
        assert!(!response_matches(b"00000000000000000000000000000000", b"GET", &c));
        assert!(!response_matches(RFC_HA1, b"GET", &Credentials { response: b"6629FAE49393A05397450978507C4EF1".to_vec(), ..c.clone() }), "lower-case hex, as nginx compares");
        let info = authentication_info(RFC_HA1, &c);
        assert!(info.starts_with("qop=\"auth\", rspauth=\"") && info.ends_with("\", cnonce=\"0a4f113b\", nc=00000001"), "{info}");
    }

    #[test]
    fn realm_user_entry_and_uri_follow_the_module() {
        assert!(realm_matches(b"Staff", b"Staff"));
        assert!(realm_matches(b"Staff", b"Sta"), "nginx compares the shorter length (a quirk)");
        assert!(!realm_matches(b"Staff", b"Other"));
        let ha1 = "939e7578ed9e3c518a452acee763bce9";
        assert_eq!(ha1_for(format!("testrealm@host.com:{ha1}").as_bytes(), b"testrealm@host.com"), Some(ha1.as_bytes()));
        assert_eq!(ha1_for(format!("testrealm@host.com:{ha1}:comment").as_bytes(), b"testrealm@host.com"), Some(ha1.as_bytes()));
        assert_eq!(ha1_for(format!("other:{ha1}").as_bytes(), b"testrealm@host.com"), None);
        assert_eq!(ha1_for(b"testrealm@host.com:abc", b"testrealm@host.com"), None, "not 32 characters");
        assert_eq!(ha1_for(b"no colon", b"no colon"), None);
        assert!(uri_matches(b"/a?b=c", b"/a?b=c"));
        assert!(uri_matches(b"/a?b=c", b"/a"), ".NET clients leave the query out");
        assert!(!uri_matches(b"/a?b=c", b"/b"));
        assert!(!uri_matches(b"/ab", b"/a"));
    }

    #[test]
    fn nonces_live_sixty_seconds_then_ten_after_first_use_and_each_nc_counts_once() {
        let nonce = new_nonce(0xdead_beef_1234_5678, 1_000);
        assert_eq!(nonce, "12345678000003e8");
        let issued = NonceRecord::issued(nonce.as_bytes(), 1_000).unwrap();
        assert_eq!(NonceRecord::decode(&issued.encode(), nonce.as_bytes()), Some(issued.clone()));
        assert_eq!(NonceRecord::decode(&issued.encode(), b"ffffffffffffffff"), None, "another nonce's slot");
        let NonceCheck::Fresh(used) = use_nonce(Some(issued.clone()), b"00000001", 1_030) else { panic!() };
        assert_eq!((used.expires, used.used_once), (1_040, true));
        assert_eq!(use_nonce(Some(used.clone()), b"00000001", 1_031), NonceCheck::Invalid, "a replayed nc");
        let NonceCheck::Fresh(again) = use_nonce(Some(used.clone()), b"00000002", 1_035) else { panic!() };
        assert_eq!(again.expires, 1_040, "the first use set the end");
        assert_eq!(use_nonce(Some(again), b"00000003", 1_040), NonceCheck::Stale, "ten seconds after the first use");
        assert_eq!(use_nonce(Some(issued.clone()), b"00000001", 1_060), NonceCheck::Stale, "sixty seconds unused");
        assert_eq!(use_nonce(Some(issued.clone()), b"00000014", 1_001), NonceCheck::Stale, "nc 20 is past the replays");
        assert_eq!(use_nonce(Some(issued), b"zz", 1_001), NonceCheck::Stale, "nc not hex");
        assert_eq!(use_nonce(None, b"00000001", 1_001), NonceCheck::Invalid, "never issued");
    }

    #[test]
    fn five_failures_in_a_row_refuse_a_client_for_five_minutes() {
        let mut failures = Failures::default();
        for second in 0..4 {
            failures = failures.failed(100 + second);
            assert!(!failures.evading(100 + second));
        }
        failures = failures.failed(104);
        assert!(failures.evading(105) && failures.evading(403));
        assert!(!failures.evading(404), "300 s after the last failure");
        assert_eq!(failures.failed(405).count, 1, "a new window starts again");
        assert_eq!(Failures::decode(&failures.encode("10.0.0.1"), "10.0.0.1"), Some(failures.clone()));
        assert_eq!(Failures::decode(&failures.encode("10.0.0.1"), "10.0.0.2"), None, "another client's slot");
        assert_ne!(nonce_slot_key(b"a"), client_slot_key("a"));
    }
}
