//! Route-table JSON -> parse -> compile -> route: whatever the control plane (or an attacker with
//! ECDS access) sends, the filter refuses it or routes with it, and never panics. The filter's own
//! path ([`HostCache::load`], after a table it accepted) accepts exactly what parsing and compiling
//! the whole table accepts (in a JSON object), and routes every request the same.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use wasm_ingress_filter::matcher::{CompiledTable, HostCache, RequestParts};
use wasm_ingress_filter::table::RouteTable;

thread_local! {
    /// Holds the hosts of the last input it accepted, as a VM holds the last table's.
    static CACHE: RefCell<HostCache> = RefCell::new(HostCache::default());
}

fuzz_target!(|data: &[u8]| {
    let loaded = CACHE.with(|cache| cache.borrow_mut().load(data));
    let whole = RouteTable::from_json(data).ok().and_then(|table| {
        let hosts: Vec<String> = table.hosts.iter().map(|h| h.host.replace('*', "x")).collect();
        CompiledTable::compile(table).ok().map(|compiled| (hosts, compiled))
    });
    // serde also reads a struct from a JSON array (fields by position); the filter's path takes
    // an object only, which is all the control plane writes.
    let object = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    assert_eq!(loaded.is_ok(), whole.is_some() && object, "the cache's verdict: {:?}", loaded.as_ref().err().map(ToString::to_string));
    let (Ok(loaded), Some((hosts, compiled))) = (loaded, whole) else { return };
    // Both schemes, and a known and an unknown listener port, so every redirect kind is built.
    let variants = [(false, None), (true, Some(8443))];
    for host in hosts.iter().take(8) {
        for path in ["/", "/a/b/../c?x=1", "/%2e%2e/x", "//", ""] {
            for (https, listener_port) in variants {
                let request = RequestParts { authority: host.as_bytes(), path: path.as_bytes(), https, listener_port, forwarded_host: b"" };
                let decision = compiled.route(&request, data.len() as u64);
                assert_eq!(format!("{decision:?}"), format!("{:?}", loaded.table.route(&request, data.len() as u64)));
            }
        }
    }
});
