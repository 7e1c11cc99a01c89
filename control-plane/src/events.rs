//! Kubernetes Events for diagnostics: every `Diagnostic` about an Ingress (missing Service, bad regex,
//! missing Secret, conflicting path, unsupported annotation) becomes an `events.k8s.io/v1` Event whose
//! `regarding` is that Ingress, so `kubectl describe ingress` shows it.
//!
//! Rate limiting is a pure planner (`EventPlanner`): a diagnostic is posted once while it persists
//! (an unchanged rebuild posts nothing), again only after it went away and came back, and at most
//! `per_minute` Events are posted per minute — the rest wait for the next window (`run_writers` in
//! `status.rs` flushes every 30 s). Event names are a hash of the Ingress UID and the diagnostic, so a
//! restarted or newly elected control plane re-posting the same diagnostic gets `409 AlreadyExists`
//! and the Event is not duplicated. This module must not decide what is wrong (translation does) and
//! must not write anything but Events; only the leader calls it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};
use sha2::{Digest, Sha256};

use crate::model::{Diagnostic, Severity};
use crate::source::kube::{AccessScope, ApiAccess};
use crate::state::{ClusterState, ObjectKey};

/// What event publishing needs from the API server.
pub const API_ACCESS: &[ApiAccess] =
    &[ApiAccess { group: "events.k8s.io", resource: "events", verbs: &["create"], scope: AccessScope::Cluster }];

/// Default cap on Events posted per minute (all Ingresses together).
pub const DEFAULT_EVENTS_PER_MINUTE: usize = 30;

/// The Kubernetes API limit on `note`.
const NOTE_MAX_BYTES: usize = 1024;

/// Decides which diagnostics to post now. Pure: time is passed in.
#[derive(Debug, Clone)]
pub struct EventPlanner {
    per_minute: usize,
    /// Diagnostics already posted that are still present.
    posted: BTreeSet<Diagnostic>,
    window_start: Option<Instant>,
    sent_in_window: usize,
}

impl EventPlanner {
    pub fn new(per_minute: usize) -> EventPlanner {
        EventPlanner { per_minute, posted: BTreeSet::new(), window_start: None, sent_in_window: 0 }
    }

    /// The Ingress diagnostics to post now, given everything translation currently reports. They are
    /// counted as posted; call [`EventPlanner::forget`] for one whose post failed so it is retried.
    pub fn plan(&mut self, diagnostics: &[Diagnostic], now: Instant) -> Vec<Diagnostic> {
        let current: BTreeSet<&Diagnostic> = diagnostics.iter().filter(|d| d.object.kind == "Ingress").collect();
        self.posted.retain(|posted| current.contains(posted));
        let window_over = self.window_start.is_none_or(|start| now.saturating_duration_since(start) >= Duration::from_secs(60));
        if window_over {
            self.window_start = Some(now);
            self.sent_in_window = 0;
        }
        let budget = self.per_minute.saturating_sub(self.sent_in_window);
        let due: Vec<Diagnostic> =
            current.into_iter().filter(|d| !self.posted.contains(*d)).take(budget).cloned().collect();
        self.sent_in_window += due.len();
        self.posted.extend(due.iter().cloned());
        due
    }

    /// Post `diagnostic` again at the next `plan` (its post failed).
    pub fn forget(&mut self, diagnostic: &Diagnostic) {
        self.posted.remove(diagnostic);
    }
}

/// Who reports the Events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    /// `reportingController`: `wasm-ingress.dev/controller` (whatever class is served).
    pub controller: String,
    /// `reportingInstance`: this replica (pod name).
    pub instance: String,
}

/// The Event for one diagnostic about `ingress` (which must be the object the diagnostic names).
pub fn event_for(diagnostic: &Diagnostic, ingress: &Ingress, reporter: &Reporter, now: Timestamp) -> Event {
    let uid = ingress.uid().unwrap_or_default();
    let mut hasher = Sha256::new();
    for part in [uid.as_str(), &diagnostic.field, &diagnostic.message, severity_reason(diagnostic.severity)] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hex::encode(&hasher.finalize()[..8]);
    let mut base: String = diagnostic.object.name.chars().take(200).collect();
    base = base.trim_end_matches(['.', '-']).to_string();
    let note = if diagnostic.field.is_empty() {
        diagnostic.message.clone()
    } else {
        format!("{}: {}", diagnostic.field, diagnostic.message)
    };
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{base}.{digest}")),
            namespace: Some(diagnostic.object.namespace.clone()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some("Warning".to_string()),
        reason: Some(severity_reason(diagnostic.severity).to_string()),
        action: Some("Translate".to_string()),
        note: Some(truncate_utf8(&note, NOTE_MAX_BYTES)),
        regarding: Some(ObjectReference {
            api_version: Some("networking.k8s.io/v1".to_string()),
            kind: Some("Ingress".to_string()),
            namespace: Some(diagnostic.object.namespace.clone()),
            name: Some(diagnostic.object.name.clone()),
            uid: ingress.uid(),
            resource_version: ingress.resource_version(),
            ..ObjectReference::default()
        }),
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(truncate_utf8(&reporter.instance, 128)),
        ..Event::default()
    }
}

fn severity_reason(severity: Severity) -> &'static str {
    match severity {
        // Part of the Ingress is not served.
        Severity::Error => "IngressRejected",
        // Served, but not as written.
        Severity::Warning => "IngressWarning",
    }
}

fn truncate_utf8(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// What one publishing round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventReport {
    pub created: usize,
    /// Already there (posted by an earlier replica or run).
    pub existing: usize,
    pub failed: usize,
}

/// Posts planned Events (the thin async shell around `EventPlanner`).
#[derive(Clone)]
pub struct EventPublisher {
    client: Client,
    reporter: Reporter,
    planner: EventPlanner,
}

impl EventPublisher {
    pub fn new(client: Client, reporter: Reporter, per_minute: usize) -> EventPublisher {
        EventPublisher { client, reporter, planner: EventPlanner::new(per_minute) }
    }

    /// Post what the planner lets through now. Diagnostics about Ingresses missing from `state` are
    /// skipped (there is nothing to attach them to).
    #[tracing::instrument(skip_all, fields(diagnostics = diagnostics.len()))]
    pub async fn publish(&mut self, state: &ClusterState, diagnostics: &[Diagnostic]) -> EventReport {
        let mut report = EventReport::default();
        for diagnostic in self.planner.plan(diagnostics, Instant::now()) {
            let key = ObjectKey::new(diagnostic.object.namespace.clone(), diagnostic.object.name.clone());
            let Some(ingress) = state.ingresses.get(&key) else { continue };
            let event = event_for(&diagnostic, ingress, &self.reporter, Timestamp::now());
            let api: Api<Event> = Api::namespaced(self.client.clone(), &key.namespace);
            match api.create(&PostParams::default(), &event).await {
                Ok(_) => report.created += 1,
                Err(kube::Error::Api(status)) if status.code == 409 => report.existing += 1,
                Err(error) => {
                    tracing::warn!(ingress = %key, %error, "could not post Event");
                    self.planner.forget(&diagnostic);
                    report.failed += 1;
                }
            }
        }
        report
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::ObjectRef;

    fn diagnostic(kind: &str, name: &str, message: &str) -> Diagnostic {
        Diagnostic {
            object: ObjectRef { kind: kind.into(), namespace: "default".into(), name: name.into() },
            field: "spec.rules[0].http.paths[0].backend.service.name".into(),
            message: message.into(),
            severity: Severity::Error,
        }
    }

    #[test]
    fn unchanged_diagnostics_are_posted_once() {
        let mut planner = EventPlanner::new(30);
        let now = Instant::now();
        let diagnostics = vec![diagnostic("Ingress", "shop", "Service default/cart not found")];
        assert_eq!(planner.plan(&diagnostics, now), diagnostics);
        assert_eq!(planner.plan(&diagnostics, now + Duration::from_secs(1)), vec![]);
        assert_eq!(planner.plan(&diagnostics, now + Duration::from_secs(3600)), vec![]);
    }

    #[test]
    fn only_ingress_diagnostics_become_events() {
        let mut planner = EventPlanner::new(30);
        let file = diagnostic("File", "examples/bad.yaml", "not YAML");
        let service = diagnostic("Service", "cart", "no ports");
        let ingress = diagnostic("Ingress", "shop", "bad regex");
        assert_eq!(planner.plan(&[file, service, ingress.clone()], Instant::now()), vec![ingress]);
    }

    #[test]
    fn a_diagnostic_that_goes_away_and_comes_back_is_posted_again() {
        let mut planner = EventPlanner::new(30);
        let now = Instant::now();
        let problem = vec![diagnostic("Ingress", "shop", "Service default/cart not found")];
        assert_eq!(planner.plan(&problem, now).len(), 1);
        assert_eq!(planner.plan(&[], now + Duration::from_secs(1)), vec![]);
        assert_eq!(planner.plan(&problem, now + Duration::from_secs(2)), problem);
    }

    #[test]
    fn a_changed_message_is_a_new_event() {
        let mut planner = EventPlanner::new(30);
        let now = Instant::now();
        planner.plan(&[diagnostic("Ingress", "shop", "Service default/cart not found")], now);
        let changed = vec![diagnostic("Ingress", "shop", "Service default/cart has no port 8080")];
        assert_eq!(planner.plan(&changed, now + Duration::from_secs(1)), changed);
    }

    #[test]
    fn posts_are_capped_per_minute_and_the_rest_wait_for_the_next_window() {
        let mut planner = EventPlanner::new(2);
        let now = Instant::now();
        let diagnostics: Vec<Diagnostic> =
            ["a", "b", "c", "d", "e"].iter().map(|name| diagnostic("Ingress", name, "bad regex")).collect();
        assert_eq!(planner.plan(&diagnostics, now), diagnostics[0..2].to_vec());
        assert_eq!(planner.plan(&diagnostics, now + Duration::from_secs(59)), vec![]);
        assert_eq!(planner.plan(&diagnostics, now + Duration::from_secs(60)), diagnostics[2..4].to_vec());
        // "e"'s problem is fixed before its turn comes: it is never posted.
        let without_e: Vec<Diagnostic> = diagnostics[0..4].to_vec();
        assert_eq!(planner.plan(&without_e, now + Duration::from_secs(120)), vec![]);
    }

    #[test]
    fn a_forgotten_diagnostic_is_retried() {
        let mut planner = EventPlanner::new(30);
        let now = Instant::now();
        let problem = vec![diagnostic("Ingress", "shop", "bad regex")];
        planner.plan(&problem, now);
        planner.forget(&problem[0]);
        assert_eq!(planner.plan(&problem, now + Duration::from_secs(1)), problem);
    }

    #[test]
    fn event_regards_the_ingress_and_has_a_stable_name() {
        let ingress: Ingress = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "shop", "namespace": "default", "uid": "7d4b3c2a-0000-4000-8000-000000000001", "resourceVersion": "812"}
        }))
        .unwrap();
        let reporter = Reporter { controller: "wasm-ingress.dev/controller".into(), instance: "wasm-ingress-7f9c-abc".into() };
        let problem = diagnostic("Ingress", "shop", "Service default/cart not found");
        let first = event_for(&problem, &ingress, &reporter, Timestamp::UNIX_EPOCH);
        let later = event_for(&problem, &ingress, &reporter, Timestamp::now());
        assert_eq!(first.metadata.name, later.metadata.name, "same diagnostic, same name");
        let name = first.metadata.name.clone().unwrap();
        assert!(name.starts_with("shop.") && name.len() == "shop.".len() + 16, "{name}");
        assert_eq!(first.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(first.type_.as_deref(), Some("Warning"));
        assert_eq!(first.reason.as_deref(), Some("IngressRejected"));
        assert_eq!(
            first.note.as_deref(),
            Some("spec.rules[0].http.paths[0].backend.service.name: Service default/cart not found")
        );
        let regarding = first.regarding.unwrap();
        assert_eq!(regarding.kind.as_deref(), Some("Ingress"));
        assert_eq!(regarding.api_version.as_deref(), Some("networking.k8s.io/v1"));
        assert_eq!(regarding.uid.as_deref(), Some("7d4b3c2a-0000-4000-8000-000000000001"));
        assert_eq!(first.reporting_controller.as_deref(), Some("wasm-ingress.dev/controller"));
        let other = event_for(&diagnostic("Ingress", "shop", "bad regex"), &ingress, &reporter, Timestamp::UNIX_EPOCH);
        assert_ne!(other.metadata.name, first.metadata.name, "different diagnostic, different name");
    }

    #[test]
    fn long_notes_are_cut_at_a_char_boundary() {
        let text = "é".repeat(600);
        let cut = truncate_utf8(&text, NOTE_MAX_BYTES);
        assert_eq!(cut.len(), 1024);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
