//! The "wasm floor" (benchmark gateway D): a proxy-wasm HTTP filter that does the least any wasm router
//! must do per request — read `:authority` and `:path` from Envoy with the `*_bytes` host calls and set
//! the cluster header (`x-wasm-ingress-cluster`) — and nothing else. Its configuration is the cluster
//! name as plain text. Measured against wasm-ingress (gateway A), the difference is exactly what our
//! routing logic costs. It must not grow any logic: no parsing, no matching, no allocation beyond
//! what the SDK does for the two header reads.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

/// Same name as `wasm_ingress_filter::table::CLUSTER_HEADER` (kept literal so this crate stays tiny).
pub const CLUSTER_HEADER: &str = "x-wasm-ingress-cluster";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(FloorRoot { cluster: Rc::from(Vec::new()) })
    });
}}

/// Holds the configured cluster name, shared with every request context.
struct FloorRoot {
    cluster: Rc<[u8]>,
}

impl Context for FloorRoot {}

impl RootContext for FloorRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let cluster = self.get_plugin_configuration().unwrap_or_default();
        let trimmed = cluster.trim_ascii();
        if trimmed.is_empty() {
            return false;
        }
        self.cluster = Rc::from(trimmed);
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(FloorRequest { cluster: Rc::clone(&self.cluster) }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct FloorRequest {
    cluster: Rc<[u8]>,
}

impl Context for FloorRequest {}

impl HttpContext for FloorRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // The two reads every router needs; their values are deliberately unused beyond presence.
        let authority = self.get_http_request_header_bytes(":authority");
        let path = self.get_http_request_header_bytes(":path");
        if authority.is_some() || path.is_some() {
            self.set_http_request_header_bytes(CLUSTER_HEADER, Some(&self.cluster));
        }
        Action::Continue
    }
}
