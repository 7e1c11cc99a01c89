//! ingress-nginx's `ssl-passthrough`: TLS connections whose SNI is the Ingress's host go to the
//! backend of the host's `/` location untouched (Envoy reads the SNI with its TLS inspector and
//! proxies TCP), instead of Envoy terminating TLS. As in ingress-nginx, only with the controller
//! flag `--enable-ssl-passthrough` (off by default: the annotation is then ignored, a warning),
//! the target is the host's oldest `/` path whichever Ingress has it (other paths are HTTP-only;
//! the translator settles it once every Ingress is read), and plain HTTP to the host is routed as
//! usual.
//!
//! One difference on purpose: ingress-nginx ignores every other annotation of a passthrough
//! Ingress — its allow-lists and auth included, so the host is served open on 443. Here an Ingress
//! that restricts access is not passed through (an error): nothing can be enforced on bytes that
//! are never decrypted, and an access control must never be dropped silently. Pure.

use crate::model::{ObjectRef, Severity};

use super::annotations::NginxAnnotations;
use super::{Diagnostics, NGINX_PREFIX};

/// Whether this Ingress's hosts are passed through, saying why not when it asks for it.
pub(super) fn wanted(nginx: &NginxAnnotations, enabled: bool, object: &ObjectRef, diagnostics: &mut Diagnostics) -> bool {
    if !nginx.ssl_passthrough {
        return false;
    }
    let field = format!("metadata.annotations[{NGINX_PREFIX}ssl-passthrough]");
    if !enabled {
        diagnostics.push(
            object.clone(),
            field,
            Severity::Warning,
            "needs `serve --enable-ssl-passthrough` (ingress-nginx's flag, off by default there too); ignored".into(),
        );
        return false;
    }
    let restrictions = [
        (!nginx.allow_sources.is_empty() || !nginx.deny_sources.is_empty(), "a source-range list"),
        (nginx.auth.is_some(), "auth-url"),
        (nginx.basic.is_some(), "auth-type"),
        (nginx.auth_tls.as_ref().is_some_and(|tls| tls.asks()), "auth-tls-secret"),
        (nginx.denied.is_some(), "an access control that fails closed"),
    ];
    if let Some((_, what)) = restrictions.iter().find(|(restricts, _)| *restricts) {
        diagnostics.push(
            object.clone(),
            field,
            Severity::Error,
            format!("would bypass {what} (TLS passed through is never decrypted, so nothing can be checked); not passed through, the Ingress is served with TLS terminated"),
        );
        return false;
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::Cidr;

    fn run(nginx: &NginxAnnotations, enabled: bool) -> (bool, Vec<String>) {
        let object = ObjectRef { kind: "Ingress".into(), namespace: "default".into(), name: "argocd".into() };
        let mut diagnostics = Diagnostics::default();
        let wanted = wanted(nginx, enabled, &object, &mut diagnostics);
        (wanted, diagnostics.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn passthrough_needs_the_flag_and_never_bypasses_an_access_control() {
        let off = NginxAnnotations::default();
        assert_eq!(run(&off, true), (false, vec![]));
        let on = NginxAnnotations { ssl_passthrough: true, ..NginxAnnotations::default() };
        assert_eq!(run(&on, true), (true, vec![]));
        let (wanted, said) = run(&on, false);
        assert!(!wanted);
        assert!(said[0].starts_with("warning: Ingress default/argocd: metadata.annotations[nginx.ingress.kubernetes.io/ssl-passthrough]: needs `serve --enable-ssl-passthrough`"), "{said:?}");
        let config = super::super::auth_tls::AuthTlsConfig {
            secret: crate::state::ObjectKey::new("default", "ca"),
            verify: super::super::auth_tls::VerifyClient::On,
            depth: 1,
            pass_certificate: false,
            error_page: None,
            match_cn: None,
        };
        let certified = NginxAnnotations { auth_tls: Some(config), ..on.clone() };
        let (wanted, said) = run(&certified, true);
        assert!(!wanted && said[0].contains("would bypass auth-tls-secret"), "{said:?}");
        let listed = NginxAnnotations { allow_sources: vec![Cidr::parse("10.0.0.0/8").unwrap()], ..on };
        let (wanted, said) = run(&listed, true);
        assert!(!wanted);
        assert!(said[0].starts_with("error: ") && said[0].contains("would bypass a source-range list"), "{said:?}");
    }
}
