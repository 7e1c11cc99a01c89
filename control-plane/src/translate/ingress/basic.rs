//! ingress-nginx basic and digest authentication (`auth-type: basic|digest`, `auth-secret`,
//! `auth-secret-type`, `auth-realm`), read as its `auth` parser reads them: the users come from a
//! Secret of the Ingress's namespace, as an htpasswd (digest: htdigest, `user:realm:HA1`) file
//! under the key `auth` (`auth-file`, the default) or one user per key (`auth-map`). The filter
//! checks the credentials (`wasm_ingress_filter::basic`, `wasm_ingress_filter::digest`); this
//! module reads the annotations ([`parse`]) and the Secret ([`users`]). Pure.
//!
//! Fails closed as ingress-nginx's "location denied" (503): no `auth-secret`, a Secret that does
//! not exist or has no `auth` key. An `auth-type` other than basic and digest, or an
//! `auth-secret-type` other than the two, makes ingress-nginx reject the Ingress, and so here
//! (`validators`, before this module; its 503 stays as the fallback). Differs, failing closed: with `auth-type: digest`, an empty `auth-realm`
//! (or `off`) still asks for credentials, where nginx's digest module then lets everyone in.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use wasm_ingress_filter::basic::PasswordHash;
use wasm_ingress_filter::table::BasicAuth;

use crate::model::Severity;
use crate::state::ObjectKey;

use super::annotations::{AnnotationNote, NGINX_PREFIX};
use super::behaviour::Reader;

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &["auth-realm", "auth-secret", "auth-secret-type", "auth-type"];

/// What the basic-auth annotations of one Ingress ask for (`auth-type: basic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicConfig {
    /// The Secret holding the users (`namespace/name`).
    pub secret: ObjectKey,
    /// `auth-secret-type: auth-map`: one user per key; otherwise an htpasswd file under `auth`.
    pub map: bool,
    pub realm: String,
    /// `auth-type: digest`.
    pub digest: bool,
}

impl BasicConfig {
    /// The key of this Secret's users in the route table's password lists.
    pub fn list_key(&self) -> String {
        let kind = if self.map { "auth-map" } else { "auth-file" };
        format!("{}:{kind}{}", self.secret, if self.digest { ":digest" } else { "" })
    }

    /// The route table's rule.
    pub fn rule(&self) -> BasicAuth {
        BasicAuth { realm: self.realm.clone(), passwords: self.list_key(), digest: self.digest }
    }
}

/// The outcome of reading the basic-auth annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basic {
    Off,
    On(BasicConfig),
    /// Every path answers this status because of this annotation (full key).
    Denied(u16, String),
}

/// Read the basic-auth annotations of an Ingress of `namespace`.
pub fn parse(annotations: &BTreeMap<String, String>, namespace: &str) -> (Basic, Vec<AnnotationNote>) {
    let mut reader = Reader::new(annotations);
    let basic = read(&mut reader, namespace);
    if basic == Basic::Off {
        for name in ["auth-secret", "auth-secret-type", "auth-realm"] {
            if reader.get(name).is_some() {
                reader.note(name, Severity::Warning, "has no effect without auth-type (as in ingress-nginx); ignored".into());
            }
        }
    }
    (basic, reader.notes)
}

fn read(reader: &mut Reader<'_>, namespace: &str) -> Basic {
    let Some(kind) = reader.get("auth-type").map(str::trim).filter(|t| !t.is_empty()) else {
        return Basic::Off;
    };
    let digest = match kind {
        "basic" => false,
        "digest" => true,
        other => return deny(reader, "auth-type", 503, &format!("{other:?} is not an authentication type (basic or digest)")),
    };
    let Some(secret) = reader.get("auth-secret").map(str::trim).filter(|s| !s.is_empty()) else {
        return deny(reader, "auth-secret", 503, &format!("auth-type {kind} needs auth-secret, the Secret with the users"));
    };
    // client-go's `SplitMetaNamespaceKey` (an empty namespace, `/name`, is the Ingress's too).
    let secret = match secret.split_once('/') {
        None => ObjectKey { namespace: namespace.to_string(), name: secret.to_string() },
        Some((ns, name)) if (ns.is_empty() || ns == namespace) && !name.is_empty() && !name.contains('/') => {
            ObjectKey { namespace: namespace.to_string(), name: name.to_string() }
        }
        Some(_) => return deny(reader, "auth-secret", 503, &format!("{secret:?}: a Secret of another namespace is not allowed")),
    };
    let map = match reader.get("auth-secret-type").map(str::trim).unwrap_or("auth-file") {
        "" | "auth-file" => false,
        "auth-map" => true,
        other => return deny(reader, "auth-secret-type", 503, &format!("{other:?} must be auth-file or auth-map")),
    };
    let realm = reader.get("auth-realm").unwrap_or_default().to_string();
    if realm == "off" && !digest {
        let message = "nginx's auth_basic takes the realm \"off\" as turning basic auth off (ingress-nginx serves these paths without credentials); here it is a realm and credentials are asked for".to_string();
        reader.note("auth-realm", Severity::Warning, message);
    }
    Basic::On(BasicConfig { secret, map, realm, digest })
}

fn deny(reader: &mut Reader<'_>, name: &str, status: u16, reason: &str) -> Basic {
    let consequence = match status {
        503 => "every path of this Ingress answers 503 (fail closed, as ingress-nginx denies the location)",
        _ => "every path of this Ingress answers 403 (fail closed) until it is",
    };
    reader.note(name, Severity::Error, format!("{reason}; {consequence}"));
    Basic::Denied(status, format!("{NGINX_PREFIX}{name}"))
}

/// The users of `config`'s Secret: (user → stored hash, users whose hash format is not checked).
/// `Err` says why the Secret cannot be used.
pub fn users(config: &BasicConfig, secret: Option<&Secret>) -> Result<(BTreeMap<String, String>, Vec<String>), String> {
    let secret = secret.ok_or_else(|| format!("Secret {} not found", config.secret))?;
    let data = secret.data.clone().unwrap_or_default();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_string();
    let mut users = BTreeMap::new();
    if config.map {
        for (user, hash) in &data {
            users.insert(user.clone(), text(&hash.0));
        }
    } else {
        let file = data.get("auth").ok_or_else(|| format!("Secret {} has no key \"auth\" (an htpasswd file)", config.secret))?;
        for line in String::from_utf8_lossy(&file.0).lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((user, hash)) = line.split_once(':') {
                // nginx reads the first line of a user.
                users.entry(user.to_string()).or_insert_with(|| hash.trim().to_string());
            }
        }
    }
    let usable = |stored: &str| match config.digest {
        true => wasm_ingress_filter::digest::ha1_for(stored.as_bytes(), wasm_ingress_filter::digest::realm(&config.realm).as_bytes()).is_some(),
        false => PasswordHash::parse(stored).is_supported(),
    };
    let unsupported = users.iter().filter(|(_, stored)| !usable(stored)).map(|(user, _)| user.clone()).collect();
    Ok((users, unsupported))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn read(pairs: &[(&str, &str)]) -> Basic {
        let annotations = pairs.iter().map(|(k, v)| (format!("{NGINX_PREFIX}{k}"), v.to_string())).collect();
        parse(&annotations, "default").0
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey { namespace: "default".into(), name: name.into() }
    }

    #[test]
    fn annotations_read_like_ingress_nginx() {
        let denied = |status, name: &str| Basic::Denied(status, format!("{NGINX_PREFIX}{name}"));
        let rows: [(&[(&str, &str)], Basic); 11] = [
            (&[], Basic::Off),
            (&[("auth-secret", "htpasswd")], Basic::Off),
            (&[("auth-type", "basic"), ("auth-secret", "htpasswd"), ("auth-realm", "Staff")], Basic::On(BasicConfig { secret: key("htpasswd"), map: false, realm: "Staff".into(), digest: false })),
            (&[("auth-type", "basic"), ("auth-secret", "default/users"), ("auth-secret-type", "auth-map")], Basic::On(BasicConfig { secret: key("users"), map: true, realm: String::new(), digest: false })),
            (&[("auth-type", "basic")], denied(503, "auth-secret")),
            (&[("auth-type", "basic"), ("auth-secret", "other/htpasswd")], denied(503, "auth-secret")),
            // SplitMetaNamespaceKey: an empty namespace is the Ingress's.
            (&[("auth-type", "basic"), ("auth-secret", "/users")], Basic::On(BasicConfig { secret: key("users"), map: false, realm: String::new(), digest: false })),
            (&[("auth-type", "basic"), ("auth-secret", "default/a/b")], denied(503, "auth-secret")),
            (&[("auth-type", "basic"), ("auth-secret", "h"), ("auth-secret-type", "ldap")], denied(503, "auth-secret-type")),
            (&[("auth-type", "digest"), ("auth-secret", "h")], Basic::On(BasicConfig { secret: key("h"), map: false, realm: String::new(), digest: true })),
            (&[("auth-type", "digest")], denied(503, "auth-secret")),
        ];
        for (pairs, want) in rows {
            assert_eq!(read(pairs), want, "{pairs:?}");
        }
        assert_eq!(read(&[("auth-type", "kerberos")]), denied(503, "auth-type"));
    }

    /// nginx's `auth_basic off`: ingress-nginx serves such paths open; here credentials are still
    /// asked for, and `validate` says so.
    #[test]
    fn a_realm_called_off_is_a_realm_with_a_warning() {
        let annotations = [("auth-type", "basic"), ("auth-secret", "h"), ("auth-realm", "off")].iter().map(|(k, v)| (format!("{NGINX_PREFIX}{k}"), v.to_string())).collect();
        let (basic, notes) = parse(&annotations, "default");
        assert_eq!(basic, Basic::On(BasicConfig { secret: key("h"), map: false, realm: "off".into(), digest: false }));
        assert!(notes.iter().any(|(name, severity, _)| name.ends_with("auth-realm") && *severity == Severity::Warning), "{notes:?}");
    }

    #[test]
    fn users_come_from_an_htpasswd_file_or_a_map() {
        let secret = |pairs: &[(&str, &str)]| Secret {
            data: Some(pairs.iter().map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec()))).collect()),
            ..Default::default()
        };
        let file = BasicConfig { secret: key("h"), map: false, realm: String::new(), digest: false };
        let htpasswd = "# users\nfoo:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n\nbar:$2y$15$7ByhNGEutlWzH8wNW/b1Ru/Ev5m4lMZMnH4eXzsdVi1LNKEmJRlbm\ndes:abJnggxhB/yWI\nfoo:{PLAIN}second\n";
        let (users, unsupported) = users(&file, Some(&secret(&[("auth", htpasswd)]))).unwrap();
        assert_eq!(users.get("foo").map(String::as_str), Some("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="), "the first line of a user");
        assert_eq!(unsupported, ["bar"], "bcrypt above the highest cost is not checked; DES crypt is");
        assert!(self::users(&file, Some(&secret(&[("users", htpasswd)]))).unwrap_err().contains("no key \"auth\""));
        assert!(self::users(&file, None).unwrap_err().contains("not found"));
        let map = BasicConfig { map: true, ..file };
        let (users, _) = self::users(&map, Some(&secret(&[("alice", "{PLAIN}a\n")]))).unwrap();
        assert_eq!(users.get("alice").map(String::as_str), Some("{PLAIN}a"));
        assert_eq!(map.list_key(), "default/h:auth-map");
    }

    #[test]
    fn digest_users_are_htdigest_lines_of_the_realm() {
        let secret = |text: &str| Secret { data: Some([("auth".to_string(), ByteString(text.as_bytes().to_vec()))].into()), ..Default::default() };
        let config = BasicConfig { secret: key("h"), map: false, realm: "Staff".into(), digest: true };
        let htdigest = "alice:Staff:939e7578ed9e3c518a452acee763bce9\nbob:Other:939e7578ed9e3c518a452acee763bce9\ncarol:Staff:short\n";
        let (users, unsupported) = users(&config, Some(&secret(htdigest))).unwrap();
        assert_eq!(users.get("alice").map(String::as_str), Some("Staff:939e7578ed9e3c518a452acee763bce9"));
        assert_eq!(unsupported, ["bob", "carol"], "another realm, an HA1 that is not 32 characters");
        assert_eq!(config.list_key(), "default/h:auth-file:digest", "never the same list as basic auth's of the Secret");
        assert!(config.rule().digest);
    }
}
