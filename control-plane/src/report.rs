//! The control plane's log lines for diagnostics. `serve` logs each diagnostic when it appears
//! and when it is gone; a problem many objects share (a NACK of the filter configuration names
//! every served Ingress: 100 000 lines at 100 000 Ingresses) is one line that counts them and
//! names the first few. Events and the diagnostics gauge still get one per object. Pure.

use std::collections::BTreeMap;

use crate::model::{Diagnostic, Severity};
use crate::state::ObjectKey;

/// A problem shared by more objects than this is logged as one line.
pub const SUMMARISED_OVER: usize = 5;

/// Objects named in a summary line.
const NAMED: usize = 3;

/// The log lines for `diagnostics`: one per diagnostic, except that diagnostics equal but for
/// their object (same severity, kind, field and message) become one line when there are more
/// than [`SUMMARISED_OVER`] of them. Sorted by severity, then text.
pub fn lines<'d>(diagnostics: impl IntoIterator<Item = &'d Diagnostic>) -> Vec<(Severity, String)> {
    let mut groups: BTreeMap<(Severity, &str, &str, &str), Vec<&Diagnostic>> = BTreeMap::new();
    for diagnostic in diagnostics {
        let key = (diagnostic.severity, diagnostic.object.kind.as_str(), diagnostic.field.as_str(), diagnostic.message.as_str());
        groups.entry(key).or_default().push(diagnostic);
    }
    let mut out = Vec::new();
    for ((severity, kind, field, message), members) in groups {
        if members.len() <= SUMMARISED_OVER {
            out.extend(members.iter().map(|d| (severity, d.to_string())));
            continue;
        }
        let level = severity.as_str();
        let named: Vec<String> = members.iter().take(NAMED).map(|d| ObjectKey::new(&d.object.namespace, &d.object.name).to_string()).collect();
        let rest = members.len() - named.len();
        let field = if field.is_empty() { String::new() } else { format!("{field}: ") };
        out.push((severity, format!("{level}: {} {kind} objects ({} and {rest} more): {field}{message}", members.len(), named.join(", "))));
    }
    out.sort();
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::ObjectRef;

    fn diagnostic(name: &str, field: &str, message: &str, severity: Severity) -> Diagnostic {
        Diagnostic {
            object: ObjectRef { kind: "Ingress".into(), namespace: "web".into(), name: name.into() },
            field: field.into(),
            message: message.into(),
            severity,
        }
    }

    #[test]
    fn a_problem_many_objects_share_is_one_line() {
        let mut diagnostics: Vec<Diagnostic> =
            (0..1000).map(|i| diagnostic(&format!("app-{i:04}"), "", "Envoy rejected the filter configuration", Severity::Error)).collect();
        diagnostics.push(diagnostic("shop", "spec.rules[0].host", "invalid host", Severity::Warning));
        diagnostics.extend((0..5).map(|i| diagnostic(&format!("few-{i}"), "spec", "a problem of five", Severity::Warning)));
        let lines = lines(&diagnostics);
        assert_eq!(lines.len(), 1 + 1 + 5, "{lines:#?}");
        assert_eq!(
            lines[0],
            (Severity::Error, "error: 1000 Ingress objects (web/app-0000, web/app-0001, web/app-0002 and 997 more): Envoy rejected the filter configuration".into())
        );
        assert!(lines.contains(&(Severity::Warning, "warning: Ingress web/shop: spec.rules[0].host: invalid host".into())));
        assert!(lines.contains(&(Severity::Warning, "warning: Ingress web/few-4: spec: a problem of five".into())), "five are still named one by one");
    }
}
