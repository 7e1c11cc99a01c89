//! Who the client is, for the routes that ask: basic and digest authentication (`auth-type`),
//! alone or as one of `satisfy: any`'s checks, and the 401 each answers with. Basic verdicts are
//! remembered per VM (bcrypt is slow by design); digest keeps its nonces and its per-address
//! failure counts in Envoy's shared data (see [`crate::digest`]), so every worker agrees on them.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel, Status};
use sha2::{Digest as _, Sha256};

use super::{log, IngressRequest, MAX_VERIFIED_CREDENTIALS};
use crate::basic;
use crate::decision::{ANSWER_CONTENT_TYPE, UNAUTHORIZED_BODY};
use crate::digest::{self, Credentials, Failures, NonceCheck, NonceRecord};
use crate::limits;
use crate::matcher::CompiledTable;
use crate::satisfy;
use crate::table::{BasicAuth, SatisfyAny};

/// Compare-and-swap attempts on a nonce's slot before the nonce counts as unknown.
const MAX_NONCE_ATTEMPTS: usize = 8;

/// Why digest authentication refused the request, which decides its 401.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum DigestRefusal {
    /// A new challenge.
    #[default]
    Challenge,
    /// A new challenge with `stale="true"`: the credentials were right, their nonce too old.
    Stale,
    /// No challenge: the client address failed too often (the module's evasion period).
    Unheard,
}

impl IngressRequest {
    /// Whether the request's credentials pass `basic`, by its scheme (basic or digest).
    pub(super) fn credentials_pass(&mut self, table: &CompiledTable, basic: &BasicAuth) -> bool {
        if basic.digest {
            self.digest_allows(table, basic)
        } else {
            self.basic_auth_allows(table, basic)
        }
    }

    /// Whether the request's `Authorization` passes `basic`; the verdict is remembered (by a
    /// SHA-256 of list and header) until the next table, so bcrypt's cost is paid once per
    /// credential — by a user signing in, and by a client that keeps sending a wrong one.
    fn basic_auth_allows(&self, table: &CompiledTable, basic: &BasicAuth) -> bool {
        let Some(authorization) = self.get_http_request_header_bytes("authorization") else { return false };
        let key: [u8; 32] = Sha256::new().chain_update(basic.passwords.as_bytes()).chain_update([0]).chain_update(&authorization).finalize().into();
        let remembered = self.shared.verified.borrow().get(&key).copied();
        let allowed = remembered.unwrap_or_else(|| {
            let allowed = table.basic_auth_allows(basic, &authorization);
            let mut verified = self.shared.verified.borrow_mut();
            if verified.len() >= MAX_VERIFIED_CREDENTIALS {
                verified.clear();
            }
            verified.insert(key, allowed);
            allowed
        });
        if allowed {
            super::log_facts::remember_user(&authorization);
        }
        allowed
    }

    /// `satisfy: any`: the lists' verdict on the client, then (unless they let it in) the
    /// credentials'.
    pub(super) fn satisfy_any(&mut self, table: &CompiledTable, any: &SatisfyAny, basic: Option<&BasicAuth>, auth_service: bool) -> satisfy::Next {
        let address = satisfy::address(any, &self.client_address());
        let basic = basic.filter(|_| address != satisfy::Address::Allowed).map(|basic| self.credentials_pass(table, basic));
        satisfy::next(address, basic, auth_service)
    }

    /// The refusal of `basic`: 401 with its challenge (none for a digest client refused unheard).
    pub(super) fn unauthorized(&self, basic: &BasicAuth) -> Action {
        if self.is_trace() {
            return self.refuse_trace();
        }
        let challenge = self.challenge(basic);
        let mut headers = vec![("content-type", ANSWER_CONTENT_TYPE)];
        if !challenge.is_empty() {
            headers.push(("www-authenticate", challenge.as_str()));
        }
        self.send_http_response(401, self.with_answer_headers(headers), Some(UNAUTHORIZED_BODY.as_bytes()));
        Action::Pause
    }

    /// The `WWW-Authenticate` value of a refusal by `basic`: basic's realm, or digest's challenge
    /// with a new nonce (recorded here). Empty: a digest client refused unheard, or a nonce that
    /// could not be recorded (a challenge nobody could answer).
    pub(super) fn challenge(&self, basic: &BasicAuth) -> String {
        if !basic.digest {
            return basic::challenge(&basic.realm);
        }
        if self.digest_refusal == DigestRefusal::Unheard {
            return String::new();
        }
        let now = self.now_secs();
        let nonce = digest::new_nonce(self.shared.random.next(), now);
        let Some(record) = NonceRecord::issued(nonce.as_bytes(), now) else { return String::new() };
        if let Err(status) = self.set_shared_data(&digest::nonce_slot_key(nonce.as_bytes()), Some(&record.encode()), None) {
            log(LogLevel::Warn, &format!("wasm-ingress: digest nonce not recorded: {status:?}"));
            return String::new();
        }
        digest::challenge(&basic.realm, &nonce, self.digest_refusal == DigestRefusal::Stale)
    }

    /// nginx-http-auth-digest's access check (see [`crate::digest`]); a refusal's kind is kept
    /// for [`Self::challenge`], a pass's `Authentication-Info` for the response.
    fn digest_allows(&mut self, table: &CompiledTable, basic: &BasicAuth) -> bool {
        let now = self.now_secs();
        let client = self.client_address();
        let failures = self.digest_failures(&client);
        if failures.as_ref().is_some_and(|failures| failures.evading(now)) {
            self.digest_refusal = DigestRefusal::Unheard;
            return false;
        }
        let authorization = self.get_http_request_header_bytes("authorization");
        let Some(credentials) = authorization.as_deref().and_then(digest::credentials) else { return false };
        if !digest::realm_matches(digest::realm(&basic.realm).as_bytes(), &credentials.realm) {
            return false;
        }
        match self.digest_verdict(table, basic, &credentials, now) {
            Ok(info) => {
                if failures.is_some() {
                    self.record_digest_failures(&client, &Failures { count: 0, until: now });
                }
                self.authentication_info = Some(info).filter(|info| limits::answer_header_value_ok(info));
                true
            }
            Err(stale) => {
                self.record_digest_failures(&client, &failures.unwrap_or_default().failed(now));
                self.digest_refusal = if stale { DigestRefusal::Stale } else { DigestRefusal::Challenge };
                false
            }
        }
    }

    /// `Ok(Authentication-Info)` when a user of the route's list has these credentials for this
    /// request and their nonce is good; `Err(stale)` otherwise.
    fn digest_verdict(&self, table: &CompiledTable, basic: &BasicAuth, credentials: &Credentials, now: u64) -> Result<String, bool> {
        let entry = table.digest_entry(basic, &credentials.username).ok_or(false)?;
        let ha1 = digest::ha1_for(entry.as_bytes(), &credentials.realm).ok_or(false)?;
        let uri = self.get_http_request_header_bytes(":path").unwrap_or_default();
        let method = self.get_http_request_header_bytes(":method").unwrap_or_default();
        if !digest::uri_matches(&uri, &credentials.uri) || !digest::response_matches(ha1, &method, credentials) {
            return Err(false);
        }
        match self.use_nonce(credentials, now) {
            NonceCheck::Fresh(_) => Ok(digest::authentication_info(ha1, credentials)),
            NonceCheck::Stale => Err(true),
            NonceCheck::Invalid => Err(false),
        }
    }

    /// The nonce rules against its recorded state, the use written back by compare-and-swap.
    fn use_nonce(&self, credentials: &Credentials, now: u64) -> NonceCheck {
        let key = digest::nonce_slot_key(&credentials.nonce);
        for _ in 0..MAX_NONCE_ATTEMPTS {
            let (value, cas) = self.get_shared_data(&key);
            let record = value.and_then(|value| NonceRecord::decode(&value, &credentials.nonce));
            let check = digest::use_nonce(record, &credentials.nc, now);
            let NonceCheck::Fresh(used) = &check else { return check };
            match self.set_shared_data(&key, Some(&used.encode()), cas) {
                Ok(()) => return check,
                Err(Status::CasMismatch) => continue,
                Err(status) => {
                    log(LogLevel::Warn, &format!("wasm-ingress: digest nonce use not recorded: {status:?}"));
                    return NonceCheck::Invalid;
                }
            }
        }
        NonceCheck::Invalid
    }

    /// `client`'s digest failures in a row, if its slot holds them.
    fn digest_failures(&self, client: &str) -> Option<Failures> {
        let (value, _) = self.get_shared_data(&digest::client_slot_key(client));
        Failures::decode(&value?, client)
    }

    /// Write `client`'s failures (the last writer wins: two workers failing the same client at
    /// once may count one failure less).
    fn record_digest_failures(&self, client: &str, failures: &Failures) {
        if client.is_empty() {
            return;
        }
        if let Err(status) = self.set_shared_data(&digest::client_slot_key(client), Some(&failures.encode(client)), None) {
            log(LogLevel::Warn, &format!("wasm-ingress: digest failure count not recorded: {status:?}"));
        }
    }

    /// The host clock in seconds.
    fn now_secs(&self) -> u64 {
        self.now_nanos() / 1_000_000_000
    }
}
