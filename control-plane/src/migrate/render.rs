//! The text form of a migrate [`Report`]: for a person at a terminal. Grouped by Ingress, the worst
//! first; annotations that behave the same are listed on one line; colour only when asked (a TTY).

use std::fmt::Write as _;

use super::{configmap, AnnotationReport, Class, IngressReport, Report, Verdict};

/// Longest annotation value shown (snippets can be long); the JSON has them whole.
const MAX_VALUE_CHARS: usize = 80;

/// Width of the class column.
const WIDTH: usize = 13;

pub fn text(report: &Report, colour: bool) -> String {
    let paint = Paint { colour };
    let mut out = String::new();
    let summary = &report.summary;
    let _ = writeln!(
        out,
        "wasm-ingress migrate: {} of class {:?} (controller {})",
        plural(summary.ingresses, "Ingress", "Ingresses"),
        report.ingress_class,
        report.controller
    );
    configmap(&mut out, report, paint);
    for ingress in &report.ingresses {
        out.push('\n');
        ingress_block(&mut out, ingress, paint);
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "Summary: {} of {} will behave identically; {} differ; {} refused or broken.",
        summary.identical,
        plural(summary.ingresses, "Ingress", "Ingresses"),
        summary.differs,
        summary.refused
    );
    if !summary.losses.is_empty() {
        let _ = writeln!(out, "What is lost, by annotation (Ingresses concerned):");
        for loss in &summary.losses {
            let _ = writeln!(out, "  {:>4}  {} ({})", loss.ingresses, loss.annotation, paint.class(loss.class, 0));
        }
    }
    out
}

#[derive(Clone, Copy)]
struct Paint {
    colour: bool,
}

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// The class word, padded to `width` before it is painted (escape codes have no width).
    fn class(self, class: Class, width: usize) -> String {
        let code = match class {
            Class::Same => "32",
            Class::Differs => "33",
            Class::NotSupported => "35",
            Class::Refused => "1;31",
        };
        self.wrap(code, &format!("{:<width$}", class.label()))
    }

    fn verdict(self, verdict: Verdict) -> String {
        let code = match verdict {
            Verdict::Identical => "1;32",
            Verdict::Differs => "1;33",
            Verdict::Refused => "1;31",
        };
        self.wrap(code, &verdict.label().to_uppercase())
    }
}

fn configmap(out: &mut String, report: &Report, paint: Paint) {
    let Some(settings) = &report.configmap else {
        let _ = writeln!(out, "ConfigMap: none given; ingress-nginx's defaults assumed.");
        return;
    };
    let (same, other): (Vec<_>, Vec<_>) = settings.iter().partition(|s| s.class == Class::Same);
    let _ = writeln!(out, "ConfigMap: {} read, {} behave the same.", plural(settings.len(), "setting", "settings"), same.len());
    let flags = configmap::serve_flags(settings);
    if !flags.is_empty() {
        let _ = writeln!(out, "  serve these settings with: wasm-ingress serve {}", flags.join(" "));
    }
    for setting in other {
        let _ = writeln!(
            out,
            "  {} {}: {:?}: {}",
            paint.class(setting.class, WIDTH),
            setting.key,
            shorten(&setting.value),
            setting.detail
        );
    }
}

fn ingress_block(out: &mut String, ingress: &IngressReport, paint: Paint) {
    let _ = writeln!(out, "{} {}", paint.verdict(ingress.verdict), ingress.ingress);
    // Same and nothing to say: one line of names; anything with a detail: a line each.
    let (same, mut other): (Vec<&AnnotationReport>, Vec<&AnnotationReport>) =
        ingress.annotations.iter().partition(|a| a.class == Class::Same && a.detail.is_empty());
    other.sort_by(|a, b| b.class.cmp(&a.class).then_with(|| a.name.cmp(&b.name)));
    for annotation in other {
        let _ = writeln!(
            out,
            "  {} {}: {:?}: {}",
            paint.class(annotation.class, WIDTH),
            annotation.name,
            shorten(&annotation.value),
            annotation.detail
        );
    }
    if !same.is_empty() {
        let names: Vec<&str> = same.iter().map(|a| a.name.as_str()).collect();
        let _ = writeln!(out, "  {} {}", paint.class(Class::Same, WIDTH), names.join(", "));
    }
    for finding in &ingress.findings {
        let at = if finding.field.is_empty() { String::new() } else { format!("{}: ", finding.field) };
        let _ = writeln!(out, "  {:<WIDTH$} {at}{}", finding.severity, finding.message);
    }
}

fn shorten(value: &str) -> String {
    let value = value.trim();
    if value.chars().count() <= MAX_VALUE_CHARS {
        return value.to_string();
    }
    let head: String = value.chars().take(MAX_VALUE_CHARS).collect();
    format!("{head}…")
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}
