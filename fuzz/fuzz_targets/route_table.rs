//! Route-table JSON -> parse -> compile -> route: whatever the control plane (or an attacker with
//! ECDS access) sends, the filter refuses it or routes with it, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_ingress_filter::matcher::{CompiledTable, RequestParts};
use wasm_ingress_filter::table::RouteTable;

fuzz_target!(|data: &[u8]| {
    let Ok(table) = RouteTable::from_json(data) else { return };
    let hosts: Vec<String> = table.hosts.iter().map(|h| h.host.replace('*', "x")).collect();
    let Ok(compiled) = CompiledTable::compile(table) else { return };
    // Both schemes, and a known and an unknown listener port, so every redirect kind is built.
    let variants = [(false, None), (true, Some(8443))];
    for host in hosts.iter().take(8) {
        for path in ["/", "/a/b/../c?x=1", "/%2e%2e/x", "//", ""] {
            for (https, listener_port) in variants {
                let request = RequestParts { authority: host.as_bytes(), path: path.as_bytes(), https, listener_port, forwarded_host: b"" };
                let _ = compiled.route(&request, data.len() as u64);
            }
        }
    }
});
