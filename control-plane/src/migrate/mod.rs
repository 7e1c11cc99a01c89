//! `migrate`'s pure core: what happens to each Ingress of an ingress-nginx class if this controller
//! serves it. Every annotation is classified from the annotation registry (the same table that
//! drives translation and `docs/annotations.md`) and from the diagnostics translating it produced:
//! *same*, *differs* (and how), *not supported* (and what is lost) or *refused* (fails closed, and
//! why). Cross-Ingress effects (regex mode over a host, hosts shared across namespaces, path
//! conflicts, canaries without a main Ingress) and the ingress-nginx ConfigMap's settings are
//! reported beside them. Nothing here reads files or prints: see `commands::migrate`.

pub mod configmap;
mod nginx_defaults;
pub mod notes;
pub mod render;
mod values;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{Diagnostic, Severity, Translation};
use crate::state::{ClusterState, ObjectKey};
use crate::translate::ingress::registry::{self, Support};
use crate::translate::ingress::{TranslationNotes, LEGACY_CLASS_ANNOTATION, NGINX_PREFIX};

/// The JSON report's schema identifier (`docs/migrating-from-ingress-nginx.md` documents it); a
/// change that removes or renames a field gets a new version.
pub const SCHEMA: &str = "wasm-ingress.dev/migrate/v1";

/// How translation's warnings mark a behaviour ingress-nginx has too (a companion annotation
/// without the one it modifies, a canary's own annotations): such a warning does not make an
/// annotation differ.
const AS_IN_INGRESS_NGINX: &str = "(as in ingress-nginx)";

/// What happens to one annotation (or ConfigMap setting), from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Behaves as in ingress-nginx.
    Same,
    /// Applied, with the stated difference.
    Differs,
    /// Not applied: the Ingress is served without it (the detail says what is lost).
    NotSupported,
    /// The Ingress's paths fail closed (403/503), or the configuration is broken.
    Refused,
}

impl Class {
    pub fn label(self) -> &'static str {
        match self {
            Class::Same => "same",
            Class::Differs => "differs",
            Class::NotSupported => "not supported",
            Class::Refused => "refused",
        }
    }
}

/// The verdict on one Ingress: the worst of its annotations and findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Identical,
    Differs,
    Refused,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Identical => "identical",
            Verdict::Differs => "differs",
            Verdict::Refused => "refused",
        }
    }

    fn of(class: Class) -> Verdict {
        match class {
            Class::Same => Verdict::Identical,
            Class::Differs | Class::NotSupported => Verdict::Differs,
            Class::Refused => Verdict::Refused,
        }
    }
}

/// One annotation of one Ingress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnnotationReport {
    /// The name after `nginx.ingress.kubernetes.io/`.
    pub name: String,
    pub value: String,
    pub class: Class,
    /// The registry's status word (`docs/annotations.md`), or `unknown`.
    pub status: &'static str,
    /// How it differs, what is lost, or why it is refused; empty when it is the same.
    pub detail: String,
}

/// Something about an Ingress that is not one annotation: a diagnostic on its spec, or an effect
/// of other Ingresses on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `error` (the Ingress is partly refused or broken), `warning` (served, perhaps not as
    /// expected; ingress-nginx does the same unless the message says otherwise) or `note` (an
    /// ingress-nginx behaviour reproduced that the user should know about).
    pub severity: &'static str,
    /// The field concerned (`spec.rules[0].http.paths[1].path`), or empty.
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngressReport {
    /// `namespace/name`.
    pub ingress: String,
    pub verdict: Verdict,
    pub annotations: Vec<AnnotationReport>,
    pub findings: Vec<Finding>,
}

/// One annotation, by how many Ingresses lose something with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Loss {
    pub annotation: String,
    /// The worst class it has on any Ingress.
    pub class: Class,
    pub ingresses: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ingresses: usize,
    pub identical: usize,
    pub differs: usize,
    pub refused: usize,
    /// Worst first: the annotations ranked by how many Ingresses lose something.
    pub losses: Vec<Loss>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub ingress_class: String,
    pub controller: String,
    /// The ingress-nginx ConfigMap's settings, or `None` when none was given (its defaults assumed).
    pub configmap: Option<Vec<configmap::SettingReport>>,
    /// Worst verdict first, then by name.
    pub ingresses: Vec<IngressReport>,
    pub summary: Summary,
}

impl Report {
    /// 0: everything identical; 1: something differs or is not supported; 2: something is refused
    /// or broken.
    pub fn exit_code(&self) -> u8 {
        let settings = self.configmap.iter().flatten().map(|s| Verdict::of(s.class));
        let worst = self.ingresses.iter().map(|i| i.verdict).chain(settings).max().unwrap_or(Verdict::Identical);
        match worst {
            Verdict::Identical => 0,
            Verdict::Differs => 1,
            Verdict::Refused => 2,
        }
    }
}

/// Which class was migrated (for the report's header).
#[derive(Debug, Clone)]
pub struct Scope {
    pub ingress_class: String,
    pub controller: String,
}

/// The report on every Ingress of the class in `state`, given its translation.
pub fn report(
    state: &ClusterState,
    translation: &Translation,
    translation_notes: &TranslationNotes,
    scope: &Scope,
    configmap: Option<Vec<configmap::SettingReport>>,
) -> Report {
    let by_ingress = diagnostics_by_ingress(&translation.diagnostics);
    let shared = hosts_shared_across_namespaces(state, translation_notes);
    let mut ingresses: Vec<IngressReport> = state
        .ingresses
        .iter()
        .filter(|(key, _)| !translation_notes.ignored_ingresses.contains(*key))
        .map(|(key, ingress)| {
            let diagnostics = by_ingress.get(key).map(Vec::as_slice).unwrap_or_default();
            let mut report = ingress_report(key, ingress, diagnostics);
            report.findings.extend(cross_ingress_notes(key, ingress, translation_notes, &shared));
            report
        })
        .collect();
    ingresses.sort_by(|a, b| b.verdict.cmp(&a.verdict).then_with(|| a.ingress.cmp(&b.ingress)));
    let summary = summarise(&ingresses);
    Report {
        schema: SCHEMA,
        ingress_class: scope.ingress_class.clone(),
        controller: scope.controller.clone(),
        configmap,
        ingresses,
        summary,
    }
}

fn diagnostics_by_ingress(diagnostics: &[Diagnostic]) -> BTreeMap<ObjectKey, Vec<&Diagnostic>> {
    let mut by_ingress: BTreeMap<ObjectKey, Vec<&Diagnostic>> = BTreeMap::new();
    for diagnostic in diagnostics.iter().filter(|d| d.object.kind == "Ingress") {
        let key = ObjectKey::new(diagnostic.object.namespace.clone(), diagnostic.object.name.clone());
        by_ingress.entry(key).or_default().push(diagnostic);
    }
    by_ingress
}

/// The annotation key a diagnostic's field names (`metadata.annotations[KEY]`), if any.
fn annotation_of(field: &str) -> Option<&str> {
    field.strip_prefix("metadata.annotations[")?.strip_suffix(']')
}

fn ingress_report(
    key: &ObjectKey,
    ingress: &k8s_openapi::api::networking::v1::Ingress,
    diagnostics: &[&Diagnostic],
) -> IngressReport {
    let mut on_annotation: BTreeMap<&str, Vec<&Diagnostic>> = BTreeMap::new();
    let mut findings = Vec::new();
    let annotations = ingress.metadata.annotations.clone().unwrap_or_default();
    for diagnostic in diagnostics {
        match annotation_of(&diagnostic.field).filter(|k| annotations.contains_key(*k)) {
            Some(annotation) => on_annotation.entry(annotation).or_default().push(diagnostic),
            None => findings.push(Finding {
                severity: diagnostic.severity.as_str(),
                field: diagnostic.field.clone(),
                message: diagnostic.message.clone(),
            }),
        }
    }
    let annotations: Vec<AnnotationReport> = annotations
        .iter()
        .filter_map(|(annotation, value)| {
            let name = annotation.strip_prefix(NGINX_PREFIX)?;
            let said = on_annotation.get(annotation.as_str()).map(Vec::as_slice).unwrap_or_default();
            Some(classify(name, value, said))
        })
        .collect();
    let worst_annotation = annotations.iter().map(|a| Verdict::of(a.class)).max();
    let broken = findings.iter().any(|f| f.severity == "error").then_some(Verdict::Refused);
    let verdict = worst_annotation.into_iter().chain(broken).max().unwrap_or(Verdict::Identical);
    IngressReport { ingress: key.to_string(), verdict, annotations, findings }
}

/// One annotation's class: the registry's word for the name, then what translating this value
/// said (an error refuses it; a warning makes it differ at least).
pub fn classify(name: &str, value: &str, said: &[&Diagnostic]) -> AnnotationReport {
    let messages = |severity: Severity| -> Vec<&str> {
        said.iter().filter(|d| d.severity == severity).map(|d| d.message.as_str()).collect()
    };
    let (errors, warnings) = (messages(Severity::Error), messages(Severity::Warning));
    let Some(entry) = registry::lookup(name) else {
        return AnnotationReport {
            name: name.to_string(),
            value: value.to_string(),
            class: Class::Same,
            status: "unknown",
            detail: "not an annotation ingress-nginx documents (removed, or misspelt): it ignores it too".into(),
        };
    };
    let base = match entry.support {
        Support::Applied => Class::Same,
        Support::Differs | Support::NoEffect => Class::Differs,
        Support::NotYet | Support::Snippet | Support::AccessControl => Class::NotSupported,
    };
    // Translation's warning for an annotation it does not apply only says so; the page says what
    // is lost. For the others, what translation said about this value is the most exact.
    let only_says_not_applied = warnings.is_empty() || entry.support == Support::NoEffect;
    let (class, detail) = if !errors.is_empty() {
        (Class::Refused, errors.join("; "))
    } else if let Some(why) = values::same_for(name, value).filter(|_| only_says_not_applied) {
        (Class::Same, why.to_string())
    } else if !warnings.is_empty() && warnings.iter().all(|w| w.contains(AS_IN_INGRESS_NGINX)) {
        (Class::Same, warnings.join("; "))
    } else if warnings.is_empty() || matches!(entry.support, Support::NotYet | Support::NoEffect) {
        (base.max(if warnings.is_empty() { Class::Same } else { Class::Differs }), documented(name, entry.support))
    } else {
        (base.max(Class::Differs), warnings.join("; "))
    };
    AnnotationReport { name: name.to_string(), value: value.to_string(), class, status: entry.support.label(), detail }
}

/// What the documentation says about an annotation: how it differs, or what is lost.
fn documented(name: &str, support: Support) -> String {
    let note = notes::note(name).filter(|n| !n.is_empty());
    match support {
        Support::Applied => String::new(),
        Support::Differs => notes::difference(name).unwrap_or("differs from ingress-nginx (see docs/annotations.md)").to_string(),
        Support::NoEffect => format!("no effect here: {}", note.unwrap_or("nginx tuning with no Envoy counterpart")),
        Support::NotYet | Support::Snippet | Support::AccessControl => match note {
            Some(note) => format!("not applied. {note}"),
            None => "not applied: the Ingress is served without it".to_string(),
        },
    }
}

/// Hosts that Ingresses of the class in more than one namespace have rules for -> the namespaces.
fn hosts_shared_across_namespaces(state: &ClusterState, notes: &TranslationNotes) -> BTreeMap<String, BTreeSet<String>> {
    let mut namespaces: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (key, ingress) in state.ingresses.iter().filter(|(key, _)| !notes.ignored_ingresses.contains(*key)) {
        for host in rule_hosts(ingress) {
            namespaces.entry(host).or_default().insert(key.namespace.clone());
        }
    }
    namespaces.retain(|_, spaces| spaces.len() > 1);
    namespaces
}

fn rule_hosts(ingress: &k8s_openapi::api::networking::v1::Ingress) -> BTreeSet<String> {
    let rules = ingress.spec.as_ref().and_then(|s| s.rules.as_ref());
    rules.into_iter().flatten().filter_map(|rule| rule.host.as_ref()).map(|h| h.to_ascii_lowercase()).collect()
}

/// Effects of other Ingresses on this one that ingress-nginx has too.
fn cross_ingress_notes(
    key: &ObjectKey,
    ingress: &k8s_openapi::api::networking::v1::Ingress,
    translation_notes: &TranslationNotes,
    shared: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<Finding> {
    let own_reason = format!("Ingress {key} ");
    let mut findings = Vec::new();
    for host in rule_hosts(ingress) {
        if let Some(reason) = translation_notes.regex_hosts.get(&host).filter(|r| !r.starts_with(&own_reason)) {
            findings.push(Finding {
                severity: "note",
                field: String::new(),
                message: format!(
                    "host {host:?} is in regex mode because {reason}: this Ingress's paths there are matched as \
                     case-insensitive regular expressions anchored at the start (Exact and Prefix included), as \
                     ingress-nginx does"
                ),
            });
        }
        if let Some(spaces) = shared.get(&host) {
            let others: Vec<&str> = spaces.iter().map(String::as_str).filter(|ns| *ns != key.namespace).collect();
            findings.push(Finding {
                severity: "note",
                field: String::new(),
                message: format!(
                    "host {host:?} also has rules in namespace(s) {}: they are merged into one host, as ingress-nginx \
                     does (`serve --host-ownership namespace` refuses that instead)",
                    others.join(", ")
                ),
            });
        }
    }
    let legacy = ingress.metadata.annotations.as_ref().and_then(|a| a.get(LEGACY_CLASS_ANNOTATION));
    if legacy.is_some() && ingress.spec.as_ref().and_then(|s| s.ingress_class_name.as_ref()).is_none() {
        findings.push(Finding {
            severity: "note",
            field: format!("metadata.annotations[{LEGACY_CLASS_ANNOTATION}]"),
            message: "the class comes from the deprecated annotation; honoured, as ingress-nginx does".into(),
        });
    }
    findings
}

fn summarise(ingresses: &[IngressReport]) -> Summary {
    let count = |verdict: Verdict| ingresses.iter().filter(|i| i.verdict == verdict).count();
    let mut losses: BTreeMap<&str, (Class, usize)> = BTreeMap::new();
    for ingress in ingresses {
        let mut seen = BTreeSet::new();
        for annotation in ingress.annotations.iter().filter(|a| a.class != Class::Same) {
            if seen.insert(annotation.name.as_str()) {
                let loss = losses.entry(annotation.name.as_str()).or_insert((annotation.class, 0));
                loss.0 = loss.0.max(annotation.class);
                loss.1 += 1;
            }
        }
    }
    let mut losses: Vec<Loss> = losses
        .into_iter()
        .map(|(annotation, (class, ingresses))| Loss { annotation: annotation.to_string(), class, ingresses })
        .collect();
    losses.sort_by(|a, b| b.ingresses.cmp(&a.ingresses).then(b.class.cmp(&a.class)).then_with(|| a.annotation.cmp(&b.annotation)));
    Summary {
        ingresses: ingresses.len(),
        identical: count(Verdict::Identical),
        differs: count(Verdict::Differs),
        refused: count(Verdict::Refused),
        losses,
    }
}

#[cfg(test)]
mod tests;
