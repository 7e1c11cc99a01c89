//! TLS Secrets -> certificates: checks that a Secret (`kubernetes.io/tls`, or `Opaque` with the same
//! keys, as ingress-nginx reads them whatever the type) holds a PEM certificate
//! chain (`tls.crt`, every certificate parses as X.509) and a PEM private key (`tls.key`) that
//! belongs to the first (leaf) certificate. Pure; must not decide which hosts use a certificate.
//!
//! Key match: for EC keys (P-256, P-384; PKCS#8 or SEC1) and Ed25519 keys, `ring` loads the key pair
//! — which checks the private scalar against the public point — and the public key is compared with
//! the certificate's. For RSA keys (PKCS#1 or PKCS#8) the modulus and public exponent stored in the
//! private key are compared with the certificate's (the private exponent is not re-derived). Other
//! key types (P-521, DSA…) are accepted with both halves parsed but the match unchecked.

use std::io::BufReader;

use k8s_openapi::api::core::v1::Secret;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use x509_parser::der_parser::ber::{BerObject, BerObjectContent};
use x509_parser::der_parser::parse_der;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::sni;
use crate::model::{CertificateSelection, TlsCertificate};

pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_PRIVATE_KEY_KEY: &str = "tls.key";

/// A usable certificate, or why the Secret cannot serve TLS. `Ok` may carry a caveat (the key match
/// could not be checked for this key type).
pub fn certificate_from_secret(secret: &Secret) -> Result<(TlsCertificate, Option<String>), String> {
    let cert_pem = secret_text(secret, TLS_CERT_KEY)?;
    let key_pem = secret_text(secret, TLS_PRIVATE_KEY_KEY)?;

    let mut certs = Vec::new();
    for item in rustls_pemfile::certs(&mut BufReader::new(cert_pem.as_bytes())) {
        certs.push(item.map_err(|e| format!("{TLS_CERT_KEY} is not valid PEM: {e}"))?);
    }
    let Some(leaf) = certs.first() else {
        return Err(format!("{TLS_CERT_KEY} contains no PEM certificate"));
    };
    for (index, cert) in certs.iter().enumerate() {
        X509Certificate::from_der(cert.as_ref())
            .map_err(|e| format!("{TLS_CERT_KEY}: certificate {index} is not valid X.509: {e}"))?;
    }
    envoy_accepts_key(leaf.as_ref())?;
    let key = private_key(&key_pem)?;
    let caveat = key_matches_certificate(leaf.as_ref(), &key)?;
    Ok((TlsCertificate { cert_chain_pem: cert_pem, private_key_pem: key_pem }, caveat))
}

/// Envoy (BoringSSL) serves RSA keys of 2048 bits or more and ECDSA keys on P-256, P-384 or
/// P-521, nothing else; any other key would make Envoy reject the whole SDS update.
fn envoy_accepts_key(leaf_der: &[u8]) -> Result<(), String> {
    let (_, cert) =
        X509Certificate::from_der(leaf_der).map_err(|e| format!("{TLS_CERT_KEY} is not valid X.509: {e}"))?;
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let modulus = rsa.modulus.iter().position(|&b| b != 0).map_or(&[][..], |i| &rsa.modulus[i..]);
            let bits = modulus.first().map_or(0, |first| (modulus.len() - 1) * 8 + (8 - first.leading_zeros() as usize));
            if bits < 2048 {
                return Err(format!("{TLS_CERT_KEY}: an RSA key of {bits} bits; Envoy serves RSA keys of 2048 bits or more"));
            }
            Ok(())
        }
        Ok(PublicKey::EC(_)) => {
            let curve = curve_oid(spki);
            match curve.as_deref().and_then(ecdsa_key) {
                Some(_) => Ok(()),
                None => Err(format!(
                    "{TLS_CERT_KEY}: an ECDSA key on curve {}; Envoy serves P-256, P-384 and P-521 only",
                    curve.as_deref().unwrap_or("(unnamed)")
                )),
            }
        }
        _ => Err(format!(
            "{TLS_CERT_KEY}: a {} key; Envoy serves RSA and ECDSA certificates only",
            if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" { "Ed25519".to_string() } else { spki.algorithm.algorithm.to_id_string() }
        )),
    }
}

/// `Some(warning)` when the leaf certificate of `chain_pem` is expired at `now` (Unix seconds), or
/// not valid yet. Served anyway, as ingress-nginx does; clients will refuse it.
pub fn validity_warning(chain_pem: &str, now: i64) -> Option<String> {
    let leaf = rustls_pemfile::certs(&mut BufReader::new(chain_pem.as_bytes())).next()?.ok()?;
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).ok()?;
    let validity = cert.validity();
    if validity.not_after.timestamp() < now {
        Some(format!("the certificate in {TLS_CERT_KEY} expired at {}; served anyway, but clients will refuse it", validity.not_after))
    } else if validity.not_before.timestamp() > now {
        Some(format!("the certificate in {TLS_CERT_KEY} is not valid before {}; served anyway, but clients will refuse it", validity.not_before))
    } else {
        None
    }
}

/// What Envoy selects the leaf certificate of `chain_pem` by (see `sni`), from one parse of it:
/// its names ([`certificate_names`]) and its key type: RSA, or ECDSA and its curve (RSA for
/// anything else: `certificate_from_secret` lets no other key through).
pub fn certificate_selection(chain_pem: &str) -> CertificateSelection {
    with_leaf(chain_pem, |cert| CertificateSelection { names: leaf_names(cert), key: leaf_key(cert) })
        .unwrap_or(CertificateSelection { names: Vec::new(), key: sni::Key::Rsa })
}

/// The names Envoy selects the leaf certificate of `chain_pem` by, lower-cased: its DNS
/// subjectAltNames, or — only when it has no subjectAltName extension at all — its subject CN (as
/// Envoy's `populateServerNamesMap`). Empty if the chain does not parse.
pub fn certificate_names(chain_pem: &str) -> Vec<String> {
    with_leaf(chain_pem, leaf_names).unwrap_or_default()
}

/// `read` of the parsed leaf (first) certificate of `chain_pem`; `None` if it does not parse.
fn with_leaf<T>(chain_pem: &str, read: impl FnOnce(&X509Certificate<'_>) -> T) -> Option<T> {
    let leaf = rustls_pemfile::certs(&mut BufReader::new(chain_pem.as_bytes())).next()?.ok()?;
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).ok()?;
    Some(read(&cert))
}

fn leaf_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(str::to_ascii_lowercase).take(1).collect(),
    };
    names.dedup();
    names
}

fn leaf_key(cert: &X509Certificate<'_>) -> sni::Key {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::EC(_)) => curve_oid(spki).as_deref().and_then(ecdsa_key).unwrap_or(sni::Key::Rsa),
        _ => sni::Key::Rsa,
    }
}

/// The named curve of an EC public key, as a dotted OID.
fn curve_oid(spki: &SubjectPublicKeyInfo<'_>) -> Option<String> {
    spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string())
}

/// The curves Envoy (BoringSSL) serves ECDSA certificates on.
fn ecdsa_key(curve_oid: &str) -> Option<sni::Key> {
    match curve_oid {
        "1.2.840.10045.3.1.7" => Some(sni::Key::EcdsaP256),
        "1.3.132.0.34" => Some(sni::Key::EcdsaP384),
        "1.3.132.0.35" => Some(sni::Key::EcdsaP521),
        _ => None,
    }
}

/// The key of a CA bundle in a Secret (ingress-nginx's convention).
pub const CA_KEY: &str = "ca.crt";

/// Whether the Secret has `key` in `data` or `stringData`.
pub fn has_key(secret: &Secret, key: &str) -> bool {
    secret.string_data.as_ref().is_some_and(|d| d.contains_key(key)) || secret.data.as_ref().is_some_and(|d| d.contains_key(key))
}

/// The Secret's ca.crt: PEM text holding one or more X.509 certificates.
pub fn ca_bundle_from_secret(secret: &Secret) -> Result<String, String> {
    let pem = secret_text(secret, CA_KEY)?;
    let mut count = 0;
    for item in rustls_pemfile::certs(&mut BufReader::new(pem.as_bytes())) {
        let der = item.map_err(|e| format!("{CA_KEY} is not valid PEM: {e}"))?;
        X509Certificate::from_der(der.as_ref())
            .map_err(|e| format!("{CA_KEY}: certificate {count} is not valid X.509: {e}"))?;
        count += 1;
    }
    if count == 0 {
        return Err(format!("{CA_KEY} contains no PEM certificate"));
    }
    Ok(pem)
}

/// The key of the revocation list in a client-certificate CA Secret (ingress-nginx's convention).
pub const CRL_KEY: &str = "ca.crl";

/// The Secret's ca.crl, if it has one: PEM text holding one or more X.509 CRLs.
pub fn crl_from_secret(secret: &Secret) -> Result<Option<String>, String> {
    if !has_key(secret, CRL_KEY) {
        return Ok(None);
    }
    let pem = secret_text(secret, CRL_KEY)?;
    let mut count = 0;
    for item in rustls_pemfile::crls(&mut BufReader::new(pem.as_bytes())) {
        let der = item.map_err(|e| format!("{CRL_KEY} is not valid PEM: {e}"))?;
        x509_parser::revocation_list::CertificateRevocationList::from_der(der.as_ref())
            .map_err(|e| format!("{CRL_KEY}: revocation list {count} is not valid X.509: {e}"))?;
        count += 1;
    }
    if count == 0 {
        return Err(format!("{CRL_KEY} contains no PEM revocation list"));
    }
    Ok(Some(pem))
}

/// `data` (base64 in YAML) with `stringData` on top, as the API server merges them.
fn secret_text(secret: &Secret, key: &str) -> Result<String, String> {
    if let Some(text) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
        return Ok(text.clone());
    }
    let bytes = secret.data.as_ref().and_then(|d| d.get(key)).ok_or_else(|| format!("has no {key}"))?;
    String::from_utf8(bytes.0.clone()).map_err(|_| format!("{key} is not PEM text"))
}

/// A private key's DER, by container format.
enum PrivateKey {
    Pkcs1(Vec<u8>),
    Pkcs8(Vec<u8>),
    Sec1(Vec<u8>),
}

/// The first private key in the PEM text.
fn private_key(pem: &str) -> Result<PrivateKey, String> {
    let mut reader = BufReader::new(pem.as_bytes());
    for item in std::iter::from_fn(|| rustls_pemfile::read_one(&mut reader).transpose()) {
        match item.map_err(|e| format!("{TLS_PRIVATE_KEY_KEY} is not valid PEM: {e}"))? {
            rustls_pemfile::Item::Pkcs1Key(key) => return Ok(PrivateKey::Pkcs1(key.secret_pkcs1_der().to_vec())),
            rustls_pemfile::Item::Pkcs8Key(key) => return Ok(PrivateKey::Pkcs8(key.secret_pkcs8_der().to_vec())),
            rustls_pemfile::Item::Sec1Key(key) => return Ok(PrivateKey::Sec1(key.secret_sec1_der().to_vec())),
            _ => continue,
        }
    }
    Err(format!("{TLS_PRIVATE_KEY_KEY} contains no PEM private key"))
}

const MISMATCH: &str = "the private key in tls.key does not belong to the certificate in tls.crt";

/// `Ok(None)`: matches. `Ok(Some(caveat))`: could not be checked. `Err`: does not match / bad key.
fn key_matches_certificate(cert_der: &[u8], key: &PrivateKey) -> Result<Option<String>, String> {
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| format!("{TLS_CERT_KEY} is not valid X.509: {e}"))?;
    let spki = cert.public_key();
    let cert_key_bits: &[u8] = &spki.subject_public_key.data;
    let cert_key = spki.parsed().map_err(|e| format!("{TLS_CERT_KEY}: unreadable public key: {e}"))?;
    let bad_key = |what: &str| format!("{TLS_PRIVATE_KEY_KEY} is not a valid {what} private key");
    match (&cert_key, key) {
        (PublicKey::RSA(rsa), PrivateKey::Pkcs1(der)) => {
            let (modulus, exponent) = rsa_public_half(der).ok_or_else(|| bad_key("RSA"))?;
            same_rsa_key(rsa.modulus, rsa.exponent, modulus, exponent)
        }
        (PublicKey::RSA(rsa), PrivateKey::Pkcs8(der)) => {
            let inner = pkcs8_private_key(der).ok_or_else(|| bad_key("PKCS#8"))?;
            let (modulus, exponent) = rsa_public_half(inner).ok_or_else(|| bad_key("RSA"))?;
            same_rsa_key(rsa.modulus, rsa.exponent, modulus, exponent)
        }
        (PublicKey::EC(_), PrivateKey::Pkcs8(der)) => {
            let rng = SystemRandom::new();
            let algorithms = [&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &signature::ECDSA_P384_SHA384_ASN1_SIGNING];
            for algorithm in algorithms {
                if let Ok(pair) = EcdsaKeyPair::from_pkcs8(algorithm, der, &rng) {
                    return same_bits(pair.public_key().as_ref(), cert_key_bits);
                }
            }
            Ok(Some("EC key on a curve other than P-256/P-384: key match not checked".into()))
        }
        (PublicKey::EC(_), PrivateKey::Sec1(der)) => {
            let (scalar, point) = sec1_parts(der).ok_or_else(|| bad_key("EC"))?;
            let Some(point) = point else {
                return Ok(Some("SEC1 key without its public key: key match not checked".into()));
            };
            let rng = SystemRandom::new();
            let algorithms = [&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &signature::ECDSA_P384_SHA384_ASN1_SIGNING];
            for algorithm in algorithms {
                if let Ok(pair) = EcdsaKeyPair::from_private_key_and_public_key(algorithm, scalar, point, &rng) {
                    return same_bits(pair.public_key().as_ref(), cert_key_bits);
                }
            }
            // Neither curve accepted the pair: either another curve, or d and Q do not belong together.
            if scalar.len() == 32 || scalar.len() == 48 {
                Err(bad_key("EC"))
            } else {
                Ok(Some("EC key on a curve other than P-256/P-384: key match not checked".into()))
            }
        }
        (PublicKey::Unknown(_), PrivateKey::Pkcs8(der)) if cert_key_bits.len() == 32 => {
            match Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
                Ok(pair) => same_bits(pair.public_key().as_ref(), cert_key_bits),
                Err(_) => Ok(Some("key type not recognised: key match not checked".into())),
            }
        }
        (PublicKey::RSA(_), _) | (PublicKey::EC(_), PrivateKey::Pkcs1(_)) => {
            Err(format!("{MISMATCH} (the certificate's key type differs from the private key's)"))
        }
        _ => Ok(Some("key type not recognised: key match not checked".into())),
    }
}

fn same_bits(from_key: &[u8], from_cert: &[u8]) -> Result<Option<String>, String> {
    if from_key == from_cert {
        Ok(None)
    } else {
        Err(MISMATCH.into())
    }
}

fn same_rsa_key(cert_n: &[u8], cert_e: &[u8], key_n: &[u8], key_e: &[u8]) -> Result<Option<String>, String> {
    fn trim(bytes: &[u8]) -> &[u8] {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        &bytes[start..]
    }
    if trim(cert_n) == trim(key_n) && trim(cert_e) == trim(key_e) {
        Ok(None)
    } else {
        Err(MISMATCH.into())
    }
}

fn sequence<'a>(der: &'a [u8]) -> Option<Vec<BerObject<'a>>> {
    let (_, object) = parse_der(der).ok()?;
    match object.content {
        BerObjectContent::Sequence(items) => Some(items),
        _ => None,
    }
}

/// PKCS#1 `RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, … }`.
fn rsa_public_half(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let items = sequence(der)?;
    let modulus = items.get(1)?.as_slice().ok()?;
    let exponent = items.get(2)?.as_slice().ok()?;
    Some((modulus, exponent))
}

/// PKCS#8 `PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING, … }`.
fn pkcs8_private_key(der: &[u8]) -> Option<&[u8]> {
    let items = sequence(der)?;
    items.get(2)?.as_slice().ok()
}

/// SEC1 `ECPrivateKey ::= SEQUENCE { version, privateKey OCTET STRING, [0] parameters, [1] publicKey }`:
/// the private scalar and, when present, the public point.
fn sec1_parts(der: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let items = sequence(der)?;
    let scalar = items.get(1)?.as_slice().ok()?;
    let mut point = None;
    for item in items.iter().skip(2) {
        if item.header.tag().0 != 1 {
            continue;
        }
        // `[1] EXPLICIT BIT STRING`: the content is the DER of the bit string.
        let inner = match &item.content {
            BerObjectContent::Tagged(_, _, inner) => inner.as_slice().ok(),
            BerObjectContent::Unknown(any) => parse_der(any.data).ok().and_then(|(_, bits)| bits.as_slice().ok()),
            _ => None,
        };
        point = inner;
    }
    Some((scalar, point))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    const RSA_CRT: &str = include_str!("testdata/rsa.crt");
    const RSA_PKCS1_KEY: &str = include_str!("testdata/rsa-pkcs1.key");
    const RSA_PKCS8_KEY: &str = include_str!("testdata/rsa-pkcs8.key");
    const EC_CRT: &str = include_str!("testdata/ec.crt");
    const EC_SEC1_KEY: &str = include_str!("testdata/ec-sec1.key");
    const EC384_CRT: &str = include_str!("testdata/ec384.crt");
    const EC384_SEC1_KEY: &str = include_str!("testdata/ec384-sec1.key");

    fn tls_secret(cert: &str, key: &str) -> Secret {
        Secret {
            type_: Some("kubernetes.io/tls".into()),
            data: Some(BTreeMap::from([
                (TLS_CERT_KEY.to_string(), ByteString(cert.as_bytes().to_vec())),
                (TLS_PRIVATE_KEY_KEY.to_string(), ByteString(key.as_bytes().to_vec())),
            ])),
            ..Secret::default()
        }
    }

    #[test]
    fn certificate_keys_are_told_apart_as_envoy_does() {
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let p384_generated = rcgen::CertificateParams::new(vec!["g.example.com".to_string()]).unwrap().self_signed(&p384).unwrap().pem();
        let cases = [
            (RSA_CRT, sni::Key::Rsa),
            (EC_CRT, sni::Key::EcdsaP256),
            (EC384_CRT, sni::Key::EcdsaP384),
            (p384_generated.as_str(), sni::Key::EcdsaP384),
            ("not a certificate", sni::Key::Rsa),
        ];
        for (pem, key) in cases {
            assert_eq!(certificate_selection(pem).key, key, "{pem}");
        }
    }

    #[test]
    fn secrets_are_accepted_or_refused_by_table() {
        let generated = rcgen::generate_simple_self_signed(vec!["gen.example.com".to_string()]).unwrap();
        let gen_crt = generated.cert.pem();
        let gen_key = generated.signing_key.serialize_pem();
        let chain = format!("{EC_CRT}{RSA_CRT}");
        let ed_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let ed_crt = rcgen::CertificateParams::new(vec!["ed.example.com".to_string()]).unwrap().self_signed(&ed_key).unwrap().pem();
        let ed_key = ed_key.serialize_pem();
        let cases: Vec<(&str, &str, &str, Result<(), &str>)> = vec![
            ("rsa 1024: Envoy refuses it", include_str!("testdata/rsa1024.crt"), include_str!("testdata/rsa1024.key"), Err("an RSA key of 1024 bits")),
            ("ed25519: Envoy refuses it", &ed_crt, &ed_key, Err("a Ed25519 key; Envoy serves RSA and ECDSA certificates only")),
            ("rsa pkcs1 key matches", RSA_CRT, RSA_PKCS1_KEY, Ok(())),
            ("rsa pkcs8 key matches", RSA_CRT, RSA_PKCS8_KEY, Ok(())),
            ("ec p256 sec1 key matches", EC_CRT, EC_SEC1_KEY, Ok(())),
            ("ec p384 sec1 key matches", EC384_CRT, EC384_SEC1_KEY, Ok(())),
            ("ec p256 pkcs8 key matches", &gen_crt, &gen_key, Ok(())),
            ("chain: leaf decides", &chain, EC_SEC1_KEY, Ok(())),
            ("ec key of another cert", &gen_crt, EC_SEC1_KEY, Err(MISMATCH)),
            ("pkcs8 ec key of another cert", EC_CRT, &gen_key, Err(MISMATCH)),
            ("p384 key for p256 cert", EC_CRT, EC384_SEC1_KEY, Err(MISMATCH)),
            ("ec key for rsa cert", RSA_CRT, EC_SEC1_KEY, Err(MISMATCH)),
            ("rsa key for ec cert", EC_CRT, RSA_PKCS1_KEY, Err(MISMATCH)),
            ("no certificate", "hello", EC_SEC1_KEY, Err("tls.crt contains no PEM certificate")),
            ("no key", EC_CRT, "hello", Err("tls.key contains no PEM private key")),
            ("truncated certificate", &EC_CRT[..EC_CRT.len() - 40], EC_SEC1_KEY, Err("tls.crt")),
            (
                "certificate that is not x509",
                "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
                EC_SEC1_KEY,
                Err("is not valid X.509"),
            ),
        ];
        for (name, cert, key, expected) in cases {
            let result = certificate_from_secret(&tls_secret(cert, key));
            match (expected, result) {
                (Ok(()), Ok((certificate, caveat))) => {
                    assert_eq!(caveat, None, "{name}");
                    assert_eq!(certificate.cert_chain_pem, cert, "{name}");
                    assert_eq!(certificate.private_key_pem, key, "{name}");
                }
                (Err(wanted), Err(reason)) => assert!(reason.contains(wanted), "{name}: {reason}"),
                (expected, result) => panic!("{name}: expected {expected:?}, got {:?}", result.map(|(_, c)| c)),
            }
        }
    }

    #[test]
    fn expired_and_future_certificates_are_warned_about() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["old.example.com".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let pem = params.self_signed(&key).unwrap().pem();
        let jan_2022 = 1_640_995_200;
        let jun_2020 = 1_590_969_600;
        let jan_2019 = 1_546_300_800;
        assert!(validity_warning(&pem, jan_2022).is_some_and(|w| w.contains("expired at")));
        assert_eq!(validity_warning(&pem, jun_2020), None);
        assert!(validity_warning(&pem, jan_2019).is_some_and(|w| w.contains("not valid before")));
    }

    #[test]
    fn string_data_is_read_and_missing_key_is_named() {
        let mut secret = Secret { type_: Some("kubernetes.io/tls".into()), ..Secret::default() };
        secret.string_data = Some(BTreeMap::from([(TLS_CERT_KEY.to_string(), EC_CRT.to_string())]));
        assert_eq!(certificate_from_secret(&secret).err().as_deref(), Some("has no tls.key"));
        secret.string_data.as_mut().unwrap().insert(TLS_PRIVATE_KEY_KEY.into(), EC_SEC1_KEY.into());
        assert!(certificate_from_secret(&secret).is_ok());
    }

    #[test]
    fn revocation_lists_are_optional_but_must_parse() {
        let with = |crl: &str| {
            let data = BTreeMap::from([(CA_KEY.to_string(), EC_CRT.to_string()), (CRL_KEY.to_string(), crl.to_string())]);
            crl_from_secret(&Secret { string_data: Some(data), ..Secret::default() })
        };
        let plain = Secret { string_data: Some(BTreeMap::from([(CA_KEY.to_string(), EC_CRT.to_string())])), ..Secret::default() };
        assert_eq!(crl_from_secret(&plain), Ok(None));
        assert_eq!(with("not a crl").err().as_deref(), Some("ca.crl contains no PEM revocation list"));
        assert!(with("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n").is_err(), "not X.509");
    }
}
