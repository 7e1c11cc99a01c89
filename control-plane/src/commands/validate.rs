//! `wasm-ingress validate DIR`: load a manifests folder, translate it exactly as `serve` would, and
//! print every problem, one per line (`error: Ingress default/shop: spec.rules[0].host: …`), then a
//! summary line. Exit status: 0 if there is no error (warnings are printed but do not fail: they
//! describe things that are served, only perhaps not as expected), 1 if there is any error-level
//! diagnostic, 2 if the folder cannot be read at all. Must not start servers or write anything.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use crate::cli::{TranslationArgs, ValidateArgs};
use crate::model::{Diagnostic, Severity, Translation};
use crate::source::external_names;
use crate::source::files::{load_dir, SourceSnapshot};
use crate::state::ClusterState;
use crate::translate::ingress::{translate_with_notes, TranslateOptions, TranslationNotes};

/// What `validate` and `explain` both need: the folder's objects, translated.
pub(crate) struct Loaded {
    pub state: ClusterState,
    pub translation: Translation,
    pub notes: TranslationNotes,
    /// File problems and translation problems together, sorted.
    pub diagnostics: Vec<Diagnostic>,
}

pub(crate) fn load_and_translate(dir: &Path, flags: &TranslationArgs) -> anyhow::Result<Loaded> {
    if !dir.is_dir() {
        bail!("{}: not a folder (or does not exist)", dir.display());
    }
    let (state, diagnostics) = load_dir(dir);
    // ExternalName Services are checked as `serve` checks them; their names are not looked up
    // here (`serve` does, every 30 s).
    let loaded = SourceSnapshot { state, diagnostics };
    let no_lookups = std::collections::BTreeMap::new();
    let SourceSnapshot { state, mut diagnostics } = external_names::merge(&loaded, &no_lookups, external_names::Settings::default(), &mut external_names::Merged::default());
    let options = TranslateOptions { now: Some(crate::translate::ingress::unix_now()), ..flags.options(false)? };
    let (translation, notes) = translate_with_notes(&state, &options);
    diagnostics.extend(translation.diagnostics.iter().cloned());
    diagnostics.sort();
    diagnostics.dedup();
    Ok(Loaded { state, translation, notes, diagnostics })
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let loaded = load_and_translate(&args.dir, &args.translation)?;
    for diagnostic in &loaded.diagnostics {
        println!("{diagnostic}");
    }
    let errors = loaded.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = loaded.diagnostics.len() - errors;
    println!("{}", summary(&args.dir, &loaded, errors, warnings));
    Ok(if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

fn summary(dir: &Path, loaded: &Loaded, errors: usize, warnings: usize) -> String {
    let model = &loaded.translation.model;
    let routes: usize = model.route_table.hosts.iter().map(|h| h.routes.len()).sum();
    format!(
        "{}: {}, {}; {} of {} served ({}, {}, {}, {}){}",
        dir.display(),
        plural(errors, "error", "errors"),
        plural(warnings, "warning", "warnings"),
        plural(loaded.translation.served_ingresses.len(), "Ingress", "Ingresses"),
        loaded.state.ingresses.len(),
        plural(model.route_table.hosts.len(), "host", "hosts"),
        plural(routes, "route", "routes"),
        plural(model.clusters.len(), "cluster", "clusters"),
        plural(model.tls_servers.len(), "TLS server", "TLS servers"),
        if loaded.notes.ignored_ingresses.is_empty() {
            String::new()
        } else {
            format!(
                "; {} of another class ignored{}",
                plural(loaded.notes.ignored_ingresses.len(), "Ingress", "Ingresses"),
                other_class_hint(loaded).map(|hint| format!(" ({hint})")).unwrap_or_default()
            )
        },
    )
}

/// When nothing is served and every ignored Ingress names one class: the flags that would serve
/// them (`--ingress-class nginx --controller-name k8s.io/ingress-nginx`), its controller taken from
/// the folder's IngressClass of that name.
pub(crate) fn other_class_hint(loaded: &Loaded) -> Option<String> {
    if !loaded.translation.served_ingresses.is_empty() {
        return None;
    }
    let classes: std::collections::BTreeSet<&str> = loaded
        .notes
        .ignored_ingresses
        .iter()
        .filter_map(|key| loaded.state.ingresses.get(key))
        .filter_map(|ingress| crate::translate::ingress::class_name(ingress))
        .collect();
    let [class] = classes.into_iter().collect::<Vec<_>>()[..] else { return None };
    let object = loaded.state.ingress_classes.iter().find(|(key, _)| key.namespace.is_empty() && key.name == class).map(|(_, object)| object);
    let controller = object.and_then(|object| object.spec.as_ref()).and_then(|spec| spec.controller.as_deref());
    Some(match controller {
        Some(controller) => format!("class {class:?} of controller {controller}: --ingress-class {class} --controller-name {controller} serves them"),
        None => format!("class {class:?}: --ingress-class {class} serves them"),
    })
}
