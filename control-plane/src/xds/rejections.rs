//! The rejections standing now: per Envoy node and xDS type, the last NACK not yet followed by an
//! ACK of that type on that node. The ADS streams update it; `serve` turns it into diagnostics on
//! the Ingresses concerned (`crate::nacks`) and `/readyz` lists it. Pure bookkeeping, no I/O.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::resources::ResourceType;
use super::stream::StreamEvent;

/// Longest error detail kept (Envoy's can quote whole resources).
const MAX_DETAIL_BYTES: usize = 512;

/// One standing NACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub node: String,
    pub resource_type: ResourceType,
    pub rejected_version: String,
    /// What Envoy keeps serving (empty: nothing of this type accepted yet).
    pub last_accepted_version: String,
    pub error_detail: String,
}

/// Every standing NACK, by (node, type).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejections(BTreeMap<(String, ResourceType), Rejection>);

impl Rejections {
    /// Apply one stream event of `node`: a NACK stands until an ACK of the same type. Returns
    /// whether anything changed.
    pub fn record(&mut self, node: &str, event: &StreamEvent) -> bool {
        match event {
            StreamEvent::Nacked { resource_type, rejected_version, last_accepted_version, error_detail } => {
                let rejection = Rejection {
                    node: node.to_string(),
                    resource_type: *resource_type,
                    rejected_version: rejected_version.clone(),
                    last_accepted_version: last_accepted_version.clone(),
                    error_detail: truncate(error_detail),
                };
                self.0.insert((node.to_string(), *resource_type), rejection.clone()) != Some(rejection)
            }
            StreamEvent::Acked { resource_type, .. } => self.0.remove(&(node.to_string(), *resource_type)).is_some(),
            _ => false,
        }
    }

    /// The node's stream ended: what it rejected no longer stands (a new stream starts afresh).
    pub fn forget_node(&mut self, node: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|(n, _), _| n != node);
        self.0.len() != before
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rejection> {
        self.0.values()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One line per rejection, for `/readyz`.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        for r in self.iter() {
            let kept = if r.last_accepted_version.is_empty() { "none" } else { r.last_accepted_version.as_str() };
            let _ = writeln!(
                text,
                "rejected: node={} type={} version={} (serving {kept}): {}",
                r.node,
                r.resource_type.label(),
                r.rejected_version,
                r.error_detail.replace('\n', " ")
            );
        }
        text
    }
}

fn truncate(detail: &str) -> String {
    if detail.len() <= MAX_DETAIL_BYTES {
        return detail.to_string();
    }
    let mut end = MAX_DETAIL_BYTES;
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &detail[..end])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn nack(resource_type: ResourceType, version: &str, detail: &str) -> StreamEvent {
        StreamEvent::Nacked {
            resource_type,
            rejected_version: version.into(),
            last_accepted_version: "v1".into(),
            error_detail: detail.into(),
        }
    }

    #[test]
    fn a_nack_stands_until_an_ack_of_its_type_on_its_node() {
        let mut rejections = Rejections::default();
        assert!(rejections.record("envoy-a", &nack(ResourceType::Cluster, "v2", "bad cluster")));
        assert!(!rejections.record("envoy-a", &nack(ResourceType::Cluster, "v2", "bad cluster")), "same NACK again");
        assert!(rejections.record("envoy-b", &nack(ResourceType::Cluster, "v2", "bad cluster")));
        let other_type = StreamEvent::Acked { resource_type: ResourceType::Listener, version: "v9".into() };
        assert!(!rejections.record("envoy-a", &other_type));
        assert_eq!(rejections.len(), 2);
        let fixed = StreamEvent::Acked { resource_type: ResourceType::Cluster, version: "v3".into() };
        assert!(rejections.record("envoy-a", &fixed));
        assert_eq!(rejections.iter().map(|r| r.node.as_str()).collect::<Vec<_>>(), ["envoy-b"]);
        assert!(rejections.forget_node("envoy-b"));
        assert!(rejections.is_empty());
    }

    #[test]
    fn describe_gives_one_line_each_and_long_details_are_cut() {
        let mut rejections = Rejections::default();
        rejections.record("envoy-a", &nack(ResourceType::ExtensionConfig, "v2", "line one\nline two"));
        rejections.record("envoy-a", &nack(ResourceType::Secret, "v5", &"é".repeat(600)));
        let text = rejections.describe();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], "rejected: node=envoy-a type=ecds version=v2 (serving v1): line one line two");
        assert!(lines[0].starts_with("rejected: node=envoy-a type=sds version=v5 (serving v1): éé"));
        assert!(lines[0].len() < 600, "{}", lines[0].len());
    }
}
