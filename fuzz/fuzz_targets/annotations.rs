//! Annotation parsing: any keys and values (split from the input on NUL and '='), never a panic; a
//! denial is only ever 403 or 503.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use wasm_ingress::translate::ingress::{parse_annotations, NGINX_PREFIX};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut annotations = BTreeMap::new();
    for pair in text.split('\0') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = if key.starts_with('~') { format!("{NGINX_PREFIX}{}", &key[1..]) } else { key.to_string() };
        annotations.insert(key, value.to_string());
    }
    let (parsed, _notes) = parse_annotations(Some(&annotations), "default");
    if let Some(denial) = parsed.denied {
        assert!(denial.status == 403 || denial.status == 503);
    }
});
