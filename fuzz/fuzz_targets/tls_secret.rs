//! TLS Secret parsing: any `tls.crt` / `tls.key` bytes are accepted (parsed, key matched) or refused
//! with a reason, never a panic.
#![no_main]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use libfuzzer_sys::fuzz_target;
use wasm_ingress::translate::ingress::certificate_from_secret;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (cert, key) = data.split_at(split);
    let key = key.get(1..).unwrap_or_default();
    let secret = Secret {
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_string(), ByteString(cert.to_vec())),
            ("tls.key".to_string(), ByteString(key.to_vec())),
        ])),
        ..Secret::default()
    };
    let _ = certificate_from_secret(&secret);
});
