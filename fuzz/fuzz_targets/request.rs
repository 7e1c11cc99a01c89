//! Request parts × a representative table (exact, wildcard and host-less hosts; Exact, Prefix and
//! nginx-regex routes; rewrite templates with captures; ReplacePrefix; weights): any authority and
//! path bytes route or answer, never panic, and a rewritten path never carries a dot segment.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wasm_ingress_filter::matcher::{CompiledTable, Outcome, RequestParts};
use wasm_ingress_filter::table::RouteTable;

const TABLE: &str = r#"{"schema":1,"hosts":[
 {"host":"shop.example.com","routes":[
   {"path":{"type":"Exact","value":"/exact"},"action":{"kind":"Forward","backends":[{"cluster":"a"},{"cluster":"b","weight":3}]}},
   {"path":{"type":"Prefix","value":"/api"},"action":{"kind":"Forward","backends":[{"cluster":"api"}],"rewrite":{"type":"ReplacePrefix","value":"/v2"}}},
   {"path":{"type":"Prefix","value":"/"},"action":{"kind":"Forward","backends":[{"cluster":"home"}]}}]},
 {"host":"rewrite.example.com","routes":[
   {"path":{"type":"Regex","value":"(?i)/something(/|$)(.*)"},"action":{"kind":"Forward","backends":[{"cluster":"r"}],"rewrite":{"type":"Template","value":"/$2"}}},
   {"path":{"type":"Regex","value":"(?i)/d/(.)(.)/(.*)"},"action":{"kind":"Forward","backends":[{"cluster":"d"}],"rewrite":{"type":"Template","value":"/s/$1$2/$3?q=$0"}}},
   {"path":{"type":"Regex","value":"(?i)/b(.*)"},"action":{"kind":"Forward","backends":[{"cluster":"b"}],"rewrite":{"type":"Template","value":"$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0"}}}]},
 {"host":"*.wild.example.com","routes":[{"path":{"type":"Prefix","value":"/"},"action":{"kind":"Respond","status":403,"body":"denied"}}]},
 {"host":"","routes":[{"path":{"type":"Prefix","value":"/hostless"},"action":{"kind":"Forward","backends":[{"cluster":"h"}]}}]}],
 "default_backend":{"kind":"Forward","backends":[{"cluster":"default"}]}}"#;

fn table() -> &'static Option<CompiledTable> {
    static TABLE_CELL: OnceLock<Option<CompiledTable>> = OnceLock::new();
    TABLE_CELL.get_or_init(|| RouteTable::from_json(TABLE.as_bytes()).ok().and_then(|t| CompiledTable::compile(t).ok()))
}

fuzz_target!(|data: &[u8]| {
    let Some(compiled) = table() else { return };
    // First byte: how many bytes of authority; the rest is the path.
    let Some((&split, rest)) = data.split_first() else { return };
    let split = usize::from(split).min(rest.len());
    let (authority, path) = rest.split_at(split);
    let decision = compiled.route(&RequestParts { authority, path }, u64::from(split as u8));
    if let Outcome::Forward { path: Some(new_path), .. } = decision.outcome {
        let path_part = new_path.split('?').next().unwrap_or("");
        assert!(path_part.starts_with('/'), "{new_path:?}");
        assert!(path_part.split('/').all(|s| s != ".." && s != "."), "dot segment in {new_path:?}");
        assert!(new_path.len() <= wasm_ingress_filter::limits::MAX_REWRITTEN_PATH_BYTES);
    }
});
