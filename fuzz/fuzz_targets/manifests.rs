//! Manifest YAML -> objects -> translation -> Envoy resources, and the route table the filter would
//! get compiles: a bad object is a diagnostic, never a panic, never a table the filter refuses.
#![no_main]

use std::collections::BTreeMap;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use wasm_ingress::source::files::ManifestSet;
use wasm_ingress::translate::envoy::{build, ListenerSettings};
use wasm_ingress::translate::ingress::{translate, TranslateOptions};
use wasm_ingress_filter::matcher::CompiledTable;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut set = ManifestSet::default();
    set.apply_scan(BTreeMap::from([(PathBuf::from("fuzz.yaml"), Ok(text.to_string()))]), Vec::new());
    let snapshot = set.snapshot();
    let translation = translate(&snapshot.state, &TranslateOptions { now: Some(1_700_000_000), ..TranslateOptions::default() });
    assert!(CompiledTable::compile(translation.model.route_table.clone()).is_ok(), "the filter would refuse the table");
    let settings = ListenerSettings {
        http_address: "127.0.0.1:8080".parse().unwrap_or_else(|_| unreachable!()),
        https_address: "127.0.0.1:8443".parse().unwrap_or_else(|_| unreachable!()),
        filter_wasm: "/filter.wasm".into(),
        edge: Default::default(),
        fallback_certificate: None,
    };
    let _ = build(&translation.model, &settings);
});
