//! The translation in stages, over one [`Translator`] that holds what the stages build:
//! 1. **select** ([`Translator::new`]): our class's Ingresses, oldest first, and the hosts that ask
//!    for client certificates (their oldest Ingress decides, so they are known before any path);
//! 2. **collect**, one Ingress at a time ([`Translator::ingress`]): its annotations
//!    ([`IngressScope`]), its default backend, each rule's host ([`Translator::rule`]) and each
//!    path's candidate route ([`Translator::path`]), its TLS entries ([`Translator::tls`]);
//!    canaries wait for step 3;
//! 3. **hosts** ([`Translator::virtual_host`]): canaries attached, each host's candidates ordered
//!    (regex mode or not), conflicts settled (oldest wins), aliases and client-certificate rules;
//! 4. **finish** ([`Translator::finish`]): the table checked as the filter will compile it, unused
//!    policies and clusters dropped, certificates ordered, the [`Model`].
//!
//! Each stage only adds to the Translator's fields; none reads the Kubernetes objects of another
//! Ingress. Pure, as the rest of `translate::ingress`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend, IngressRule, IngressSpec};
use wasm_ingress_filter::cluster::ClusterName;
use wasm_ingress_filter::limits::{MAX_REGEX_ROUTES, MAX_REGEX_ROUTES_PER_HOST};
use wasm_ingress_filter::matcher::{check_route, policy_keys};
use wasm_ingress_filter::table::{Forward, PathMatch, Route, RouteAction, RouteTable, VirtualHost, NOT_FOUND_CLUSTER, SCHEMA_VERSION};

use crate::model::{AuthService, CertificateSelection, Cidr, Model, ObjectRef, Passthrough, RoutePolicy, Severity, TlsCertificate, Translation, UpstreamOptions};
use crate::state::{ClusterState, ObjectKey};

use super::auth::{self, AuthConfig};
use super::annotations::{self, NginxAnnotations, NGINX_PREFIX, REWRITE_TARGET, USE_REGEX};
use super::backends::{ingress_ref, Backends};
use super::behaviour::NginxDefaults;
use super::claims::{self, HostOwners, TlsClaims};
use super::header_maps::GlobalHeaders;
use super::{
    age_key, alias, auth_tls, canary, ciphers, header_maps, check_our_class_objects, covers, describe_match, ensure_compiles, fail_closed,
    for_backend, match_sort_key, normalize_host, passthrough, read_passwords, requested_tls_names, retain_used_clusters, route_for, shape,
    single_cluster, table_size, table_version_and_bytes, tls, trim_trailing_slash, www_redirect_hosts, Diagnostics, HostBuild, PathCandidate, PathType,
    DefaultBackendSource, ErrorPages, OurClasses, RouteExtras, RoutePolicies, TranslateOptions, TranslationNotes,
};

/// What a host of a TLS entry without a usable Secret gets over HTTPS, as ingress-nginx (which
/// also keeps redirecting it to HTTPS: see `ssl-redirect`).
const DEFAULT_CERTIFICATE_NOTE: &str =
    "the default certificate (--default-ssl-certificate, else the self-signed one), as ingress-nginx does, and still redirected to HTTPS";

/// Everything the stages build, until [`Translator::finish`] turns it into the [`Translation`].
pub(super) struct Translator<'s> {
    state: &'s ClusterState,
    options: &'s TranslateOptions,
    diagnostics: Diagnostics,
    notes: TranslationNotes,
    backends: Backends<'s>,
    hosts: BTreeMap<String, HostBuild>,
    served: BTreeSet<ObjectKey>,
    denied: BTreeSet<ObjectKey>,
    loaded: BTreeSet<ObjectKey>,
    /// The catch-all (`spec.defaultBackend` of an Ingress without rules) and its Ingress.
    default_backend: Option<(RouteAction, ObjectKey)>,
    tls_claims: TlsClaims,
    host_owners: HostOwners,
    default_policy: RoutePolicy,
    policies: BTreeMap<String, RoutePolicy>,
    /// Names some TLS entry asks for, whether or not its Secret is usable (ssl-redirect's test).
    tls_requested: BTreeSet<String>,
    /// Client certificates the clusters present (`proxy-ssl-secret`), sent like the served ones.
    client_certificates: BTreeMap<String, TlsCertificate>,
    canaries: Vec<canary::CanaryIngress<'s>>,
    /// `server-alias` names asked for, by host (the oldest Ingress of a host gives them).
    aliases: alias::AliasClaims,
    /// Hosts that ask for client certificates (`auth-tls-*`; the oldest Ingress of a host decides).
    client_hosts: BTreeMap<String, auth_tls::HostCheck>,
    /// Hosts some Ingress asks client certificates for with a Secret that cannot be used: closed
    /// whole (see `auth_tls::close`).
    closed_hosts: BTreeMap<String, ObjectKey>,
    /// `ssl-ciphers` per host (see `ciphers`).
    cipher_hosts: BTreeMap<String, Vec<String>>,
    /// `ssl-prefer-server-ciphers` by host: `true`, the client's order of suites.
    cipher_order_hosts: BTreeMap<String, bool>,
    /// External auth services the served Ingresses call (`auth-url`).
    auth_services: BTreeMap<ClusterName, AuthService>,
    /// Basic-auth users by password list (`auth-type: basic`).
    passwords: BTreeMap<String, BTreeMap<String, String>>,
    /// `ssl-passthrough` hosts (the oldest Ingress's `/` path wins).
    passthrough_hosts: BTreeMap<String, Passthrough>,
    /// (Ingress, host) asking for `ssl-passthrough`, oldest first; settled once every Ingress
    /// is collected (the host's `/` location may be a newer Ingress's).
    passthrough_requests: Vec<(ObjectKey, String)>,
    /// `--default-backend-service`'s cluster, when the Service has ready endpoints.
    global_default: Option<ClusterName>,
    /// `--global-auth-*` (see [`auth::global`]); `Err`: flags the commands refuse at start.
    global_auth: Result<Option<AuthConfig>, String>,
    /// `--add-headers` and `--proxy-set-headers`, read once for every Ingress.
    global_headers: Arc<GlobalHeaders>,
}

/// One Ingress being collected: what its rules and paths share.
struct IngressScope<'s> {
    key: &'s ObjectKey,
    object: ObjectRef,
    nginx: NginxAnnotations,
    upstream_options: UpstreamOptions,
    /// The `default-backend` cluster answering `custom-http-errors`, if usable.
    error_page_cluster: Option<ClusterName>,
    /// `spec.defaultBackend`, resolved with the Ingress's policies.
    own_default: Option<RouteAction>,
    /// `ssl-passthrough` asked for and allowed.
    passed_through: bool,
}

impl IngressScope<'_> {
    /// `custom-http-errors`, the cluster answering them and the table's error-page token, if the
    /// Ingress has some.
    fn error_pages<'a>(&'a self, token: &'a str) -> Option<ErrorPages<'a>> {
        let codes = &self.nginx.upstream.custom_http_errors;
        (!codes.is_empty()).then_some(ErrorPages { codes, cluster: self.error_page_cluster.as_ref(), token })
    }
}

/// `--add-headers` and `--proxy-set-headers` (see [`header_maps::global_headers`]): what is left
/// out is a warning on the ConfigMap.
fn global_headers(state: &ClusterState, defaults: &NginxDefaults, diagnostics: &mut Diagnostics) -> GlobalHeaders {
    let lookup = |key: &ObjectKey| state.config_maps.get(key).map(Arc::as_ref);
    let mut read = |key: Option<&ObjectKey>, upstream: bool| {
        let Some(key) = key else { return Vec::new() };
        let (headers, left_out) = header_maps::global_headers(key, upstream, lookup);
        let object = ObjectRef { kind: "ConfigMap".into(), namespace: key.namespace.clone(), name: key.name.clone() };
        let flag = if upstream { "--proxy-set-headers" } else { "--add-headers" };
        for (field, reason) in left_out {
            diagnostics.push(object.clone(), field, Severity::Warning, format!("{flag}: {reason}"));
        }
        headers
    };
    GlobalHeaders { response: read(defaults.add_headers.as_ref(), false), request: read(defaults.proxy_set_headers.as_ref(), true) }
}

/// `--block-cidrs` on the default server's `location /`, which has no address list of its own in
/// ingress-nginx (nginx's `deny` in `http` reaches it): the filter answers 403 there (see
/// `RouteTable::default_server_denied`). Sorted, without repeats.
fn default_server_denied(defaults: &NginxDefaults) -> Vec<String> {
    Cidr::set(defaults.block_cidrs.iter().copied()).iter().map(ToString::to_string).collect()
}

/// One rule's host, as its paths see it.
struct HostScope {
    host: String,
    /// The host's client-certificate check sends the `ssl-client-*` headers (see
    /// [`RoutePolicy::client_certificate_headers`]).
    client_headers: Option<bool>,
}

impl<'s> Translator<'s> {
    /// Stage 1: our Ingresses, oldest first, and a Translator ready to collect them.
    pub(super) fn new(state: &'s ClusterState, options: &'s TranslateOptions) -> (Translator<'s>, Vec<(&'s ObjectKey, &'s Ingress)>) {
        let mut diagnostics = Diagnostics::default();
        let mut notes = TranslationNotes::default();
        check_our_class_objects(state, options, &mut diagnostics);
        let mut ours: Vec<(&ObjectKey, &Ingress)> = Vec::new();
        let classes = OurClasses::new(state, options);
        for (key, ingress) in state.ingresses.iter() {
            if classes.contain(ingress) && super::catch_all(options, ingress) {
                let message = "ignored: it has a spec.defaultBackend and catch-all Ingresses are disabled (--disable-catch-all), as in ingress-nginx".to_string();
                diagnostics.push(ingress_ref(key), "spec.defaultBackend".into(), Severity::Warning, message);
            } else if classes.contain(ingress) {
                ours.push((key, ingress));
            } else {
                tracing::debug!(ingress = %key, "not of our class; ignored");
                notes.ignored_ingresses.insert(key.clone());
            }
        }
        ours.sort_by_key(|(key, ingress)| age_key(ingress, key));
        let mut backends = Backends::new(state, options.refuse_local_endpoints);
        let global_default = options.default_backend_service.as_ref().and_then(|key| backends.global_default(key, options.defaults.connect_timeout(), &mut diagnostics));
        let global_headers = Arc::new(global_headers(state, &options.defaults, &mut diagnostics));
        let translator = Translator {
            state,
            options,
            diagnostics,
            notes,
            backends,
            hosts: BTreeMap::new(),
            served: BTreeSet::new(),
            denied: BTreeSet::new(),
            loaded: BTreeSet::new(),
            default_backend: None,
            tls_claims: TlsClaims::default(),
            host_owners: HostOwners::default(),
            default_policy: options.defaults.policy(),
            policies: BTreeMap::new(),
            tls_requested: BTreeSet::new(),
            client_certificates: BTreeMap::new(),
            canaries: Vec::new(),
            aliases: alias::AliasClaims::default(),
            client_hosts: auth_tls::client_certificate_hosts(&ours, state),
            closed_hosts: auth_tls::unusable_client_certificate_hosts(&ours, state),
            cipher_hosts: ciphers::host_suites(&ours),
            cipher_order_hosts: ciphers::host_client_preference(&ours),
            auth_services: BTreeMap::new(),
            passwords: BTreeMap::new(),
            passthrough_hosts: BTreeMap::new(),
            passthrough_requests: Vec::new(),
            global_default,
            global_auth: auth::global(&options.defaults.global_auth),
            global_headers,
        };
        (translator, ours)
    }

    /// Stage 2, for one Ingress (oldest first): one with a value ingress-nginx's validators
    /// refuse is not served (a canary neither: its `Extract` runs on every Ingress, and a refusal
    /// wins over any denial); a canary waits for stage 3; a main Ingress's default backend, rules
    /// and TLS entries are collected.
    pub(super) fn ingress(&mut self, key: &'s ObjectKey, ingress: &'s Ingress) {
        let object = ingress_ref(key);
        let (mut nginx, annotation_notes) = annotations::parse(ingress.metadata.annotations.as_ref(), &key.namespace);
        if let Some((annotation, reason)) = &nginx.behaviour.refused {
            // Notes on how the refused value would otherwise be treated are moot.
            for (noted, severity, message) in annotation_notes.into_iter().filter(|(noted, ..)| noted != annotation) {
                self.diagnostics.push(object.clone(), format!("metadata.annotations[{noted}]"), severity, message);
            }
            let message = format!("{reason}; the Ingress is not served, as ingress-nginx rejects it");
            self.diagnostics.push(object, format!("metadata.annotations[{annotation}]"), Severity::Error, message);
            return;
        }
        self.loaded.insert(key.clone());
        if let Some(rules) = nginx.canary {
            canary::report(&object, ingress, annotation_notes, &mut self.diagnostics);
            self.canaries.push(canary::CanaryIngress { key: key.clone(), ingress, rules });
            return;
        }
        for (annotation, severity, message) in annotation_notes {
            self.diagnostics.push(object.clone(), format!("metadata.annotations[{annotation}]"), severity, message);
        }
        if nginx.default_source_ranges(ingress.metadata.annotations.as_ref(), &self.options.defaults) {
            let message = "--block-cidrs does not apply to this Ingress's paths: its own address lists replace it, as a location's allow/deny lines replace nginx's http-level deny in ingress-nginx";
            self.diagnostics.push(object.clone(), "metadata.annotations".into(), Severity::Warning, message.into());
        }
        self.global_auth(&mut nginx, &object);
        let Some(spec) = ingress.spec.as_ref() else {
            self.diagnostics.push(object, "spec".into(), Severity::Error, "Ingress has no spec; nothing to serve".into());
            return;
        };
        let mut scope = self.scope(key, object, nginx);
        scope.own_default = spec.default_backend.as_ref().and_then(|backend| self.own_default(&scope, backend));
        let rules = spec.rules.as_deref().unwrap_or_default();
        self.catch_all(&scope, spec, rules.is_empty());
        let mut own_hosts: Vec<String> = Vec::new();
        for (rule_index, rule) in rules.iter().enumerate() {
            self.rule(&scope, rule_index, rule, &mut own_hosts);
        }
        if scope.passed_through {
            self.passthrough_requests.extend(own_hosts.iter().filter(|host| !host.is_empty()).map(|host| (key.clone(), host.clone())));
        }
        self.tls(&scope, spec, &own_hosts);
    }

    /// What an Ingress's annotations need from the state (password lists, the client-certificate
    /// CA, upstream TLS, the error-page cluster), denying the Ingress where they cannot be had.
    fn scope(&mut self, key: &'s ObjectKey, object: ObjectRef, mut nginx: NginxAnnotations) -> IngressScope<'s> {
        if let Some(config) = nginx.basic.clone() {
            read_passwords(&config, self.state, &object, &mut nginx, &mut self.passwords, &mut self.diagnostics);
        }
        if let Some(config) = &nginx.auth_tls {
            if let Err(reason) = auth_tls::ca_bundle(config, self.state) {
                let message = format!("{reason}; every path of this Ingress's hosts answers 403, other Ingresses' too (fail closed, as ingress-nginx's AuthTLSError closes the server)");
                self.diagnostics.push(object.clone(), format!("metadata.annotations[{NGINX_PREFIX}auth-tls-secret]"), Severity::Error, message);
                nginx.deny(403, format!("{NGINX_PREFIX}auth-tls-secret"));
            }
        }
        self.header_maps(key, &object, &mut nginx);
        let upstream_options = match nginx.upstream.options(self.state, &key.namespace, &self.options.defaults, &mut self.client_certificates) {
            Ok(options) => options,
            Err(reason) => {
                let message = format!("{reason}; every path of this Ingress answers 503, as ingress-nginx denies the location");
                self.diagnostics.push(object.clone(), format!("metadata.annotations[{NGINX_PREFIX}proxy-ssl-secret]"), Severity::Error, message);
                nginx.deny(503, format!("{NGINX_PREFIX}proxy-ssl-secret"));
                Default::default()
            }
        };
        if nginx.denied.is_some() {
            self.denied.insert(key.clone());
        } else if let Some(auth) = &nginx.auth {
            self.auth_services.insert(auth.service.cluster_name(), auth.service.clone());
        }
        let balance = nginx.balancing.balance.unwrap_or(self.options.defaults.load_balance);
        let upstream_options = UpstreamOptions { balance, ..upstream_options };
        let error_page_cluster = match self.global_error_pages(&mut nginx) {
            true => self.global_default.clone(),
            false => self.error_page_cluster(key, &object, &nginx, &upstream_options),
        };
        let passed_through = passthrough::wanted(&nginx, self.options.defaults.enable_ssl_passthrough, &object, &mut self.diagnostics);
        IngressScope { key, object, nginx, upstream_options, error_page_cluster, own_default: None, passed_through }
    }

    /// The ConfigMaps of `custom-headers` and `auth-proxy-set-headers`, read into the Ingress's
    /// headers; one that cannot be used denies the Ingress with 503, as ingress-nginx denies the
    /// location.
    fn header_maps(&mut self, key: &ObjectKey, object: &ObjectRef, nginx: &mut NginxAnnotations) {
        let state = self.state;
        let lookup = move |key: &ObjectKey| state.config_maps.get(key).map(Arc::as_ref);
        nginx.global_headers = Arc::clone(&self.global_headers);
        let mut failures = Vec::new();
        if let Some(reference) = &nginx.custom_headers_map {
            match header_maps::response_headers(reference, lookup, &self.options.defaults.global_allowed_response_headers) {
                Ok(headers) => nginx.custom_headers = headers,
                Err(reason) => failures.push(("custom-headers", reason)),
            }
        }
        if let Some(auth) = nginx.auth.as_mut() {
            if let Some(reference) = &auth.proxy_set_headers {
                match header_maps::auth_headers(reference, &key.namespace, lookup) {
                    Ok(headers) => auth.set_headers = headers,
                    Err(reason) => failures.push(("auth-proxy-set-headers", reason)),
                }
            }
        }
        for (annotation, reason) in failures {
            let message = format!("{reason}; every path of this Ingress answers 503, as ingress-nginx denies the location");
            self.diagnostics.push(object.clone(), format!("metadata.annotations[{NGINX_PREFIX}{annotation}]"), Severity::Error, message);
            nginx.deny(503, format!("{NGINX_PREFIX}{annotation}"));
        }
    }

    /// Give an Ingress without `custom-http-errors` of its own those of `--custom-http-errors`
    /// (answered by `--default-backend-service`, never by its own `default-backend`, as nginx's
    /// `@custom_upstream-default-backend_CODE`); whether it took them.
    fn global_error_pages(&self, nginx: &mut NginxAnnotations) -> bool {
        let codes = &self.options.defaults.custom_http_errors;
        if nginx.upstream.no_global_errors || codes.is_empty() {
            return false;
        }
        let mut codes = codes.clone();
        codes.sort_unstable();
        codes.dedup();
        nginx.upstream.custom_http_errors = codes;
        true
    }

    /// Who answers the Ingress's `custom-http-errors`: its `default-backend` Service, else
    /// `--default-backend-service` (as ingress-nginx's `upstream-default-backend`); without
    /// either, Envoy answers 404 (a warning says so).
    fn error_page_cluster(&mut self, key: &ObjectKey, object: &ObjectRef, nginx: &NginxAnnotations, options: &UpstreamOptions) -> Option<ClusterName> {
        if nginx.upstream.custom_http_errors.is_empty() {
            return None;
        }
        // nginx's `@custom_…` location always says `proxy_pass http://upstream_balancer`: plain
        // HTTP/1.1 whatever the path's `backend-protocol` and `proxy-ssl-*`.
        let options = UpstreamOptions { http2: false, tls: None, balance: crate::model::Balance::RoundRobin, ..options.clone() };
        let own = nginx.upstream.default_backend.as_ref().and_then(|service| self.backends.error_page_cluster(key, service, &options, &mut self.diagnostics));
        let cluster = own.or_else(|| self.global_default.clone());
        if cluster.is_none() {
            let message = "no default backend with ready endpoints (a default-backend annotation, or serve --default-backend-service): the listed codes answer 404 \"404 Not Found\", as ingress-nginx's own default server";
            self.diagnostics.push(object.clone(), format!("metadata.annotations[{NGINX_PREFIX}custom-http-errors]"), Severity::Warning, message.into());
        }
        cluster
    }

    /// `spec.defaultBackend`, with the Ingress's policies (`None`: nothing can serve it).
    fn own_default(&mut self, scope: &IngressScope<'s>, backend: &IngressBackend) -> Option<RouteAction> {
        let nginx = &scope.nginx;
        let fallback = nginx.upstream.default_backend.as_deref();
        let resolved = self.backends.resolve_or_default(scope.key, "spec.defaultBackend", backend, &scope.upstream_options, fallback, &mut self.diagnostics);
        let fell_back = resolved.as_ref().is_some_and(|(_, fell_back)| *fell_back);
        let extras = RouteExtras { client_headers: None, backend: Some(backend), fell_back, error_pages: scope.error_pages(&self.options.error_page_token), answers_not_found: false };
        let route_policies = RoutePolicies::register(nginx, scope.key, &self.options.defaults, "/", extras, &self.default_policy, &mut self.policies);
        fail_closed(resolved.map(|(action, _)| action), nginx).map(|action| for_backend(action, nginx, &route_policies))
    }

    /// An Ingress with a default backend and no rules is the catch-all (the oldest wins); one with
    /// neither serves nothing.
    fn catch_all(&mut self, scope: &IngressScope<'s>, spec: &IngressSpec, no_rules: bool) {
        let key = scope.key;
        match (&scope.own_default, no_rules) {
            (Some(action), true) => match &self.default_backend {
                None => {
                    self.default_backend = Some((action.clone(), key.clone()));
                    self.notes.default_backend = Some(DefaultBackendSource::Ingress(key.origin("spec.defaultBackend")));
                    self.served.insert(key.clone());
                }
                Some((_, winner)) => {
                    let message = format!("the catch-all default backend is already set by the older Ingress {winner}; ignored");
                    self.diagnostics.push(scope.object.clone(), "spec.defaultBackend".into(), Severity::Error, message);
                }
            },
            (None, true) if spec.default_backend.is_none() => {
                let message = "Ingress has neither rules nor a defaultBackend; nothing to serve".to_string();
                self.diagnostics.push(scope.object.clone(), "spec".into(), Severity::Warning, message);
            }
            _ => {}
        }
    }

    /// One rule: its host claimed (ownership, app-root, from-to-www, aliases, client
    /// certificates, the Ingress's default backend as the host's fallback), then its paths.
    fn rule(&mut self, scope: &IngressScope<'s>, rule_index: usize, rule: &IngressRule, own_hosts: &mut Vec<String>) {
        let (key, object, nginx) = (scope.key, &scope.object, &scope.nginx);
        let rule_field = format!("spec.rules[{rule_index}]");
        let host = match normalize_host(rule.host.as_deref().unwrap_or_default()) {
            Ok(host) => host,
            Err(reason) => {
                self.diagnostics.push(object.clone(), format!("{rule_field}.host"), Severity::Error, format!("{reason}; rule skipped"));
                return;
            }
        };
        if let Err(owner) = self.host_owners.claim(&host, key, self.options.host_ownership) {
            let message = format!("host {host:?} belongs to namespace {:?} (its oldest Ingress, {owner}, claimed it first); rule refused (--host-ownership=namespace)", owner.namespace);
            self.diagnostics.push(object.clone(), format!("{rule_field}.host"), Severity::Error, message);
            return;
        }
        if !own_hosts.contains(&host) {
            own_hosts.push(host.clone());
        }
        let first = self.hosts.get(&host).is_none_or(|build| build.root_https_redirect.is_none());
        let implicit_root = (first && !host.is_empty()).then(|| self.implicit_root(scope)).flatten();
        let build = self.hosts.entry(host.clone()).or_default();
        if build.app_root.is_none() {
            build.app_root = nginx.behaviour.app_root_redirect();
        }
        if first {
            let defaults = &self.options.defaults;
            // ingress-nginx's catch-all server `_` makes its root location before any Ingress
            // and never applies one's annotations to it: no redirect there.
            build.root_https_redirect = Some(match host.is_empty() {
                true => (None, None),
                false => (nginx.behaviour.https_redirect(defaults, false, "/"), nginx.behaviour.https_redirect(defaults, true, "/")),
            });
            build.implicit_root = implicit_root.map(|action| (action, key.clone()));
        }
        if nginx.behaviour.from_to_www && build.www_redirect.is_none() {
            build.www_redirect = Some(key.clone());
        }
        self.aliases.claim(&host, key, &nginx.aliases, &mut self.diagnostics);
        if nginx.auth_tls.as_ref().is_some_and(|tls| tls.asks()) && host.is_empty() {
            let message = "a rule without host has no server name to ask client certificates for; rule skipped (fail closed)".to_string();
            self.diagnostics.push(object.clone(), format!("{rule_field}.host"), Severity::Error, message);
            return;
        }
        let host_check = self.client_hosts.get(&host);
        if let (Some(check), Some(own)) = (host_check, &nginx.auth_tls) {
            if check.ingress != *key && check.config != *own {
                let message = format!("host {host:?} already takes its client-certificate settings from the older Ingress {}; these are ignored for it (as ingress-nginx)", check.ingress);
                self.diagnostics.push(object.clone(), format!("metadata.annotations[{NGINX_PREFIX}auth-tls-secret]"), Severity::Warning, message);
            }
        }
        let host_scope = HostScope {
            client_headers: host_check.map(|check| check.config.pass_certificate),
            host,
        };
        self.host_fallback(scope, &host_scope.host);
        let paths = rule.http.as_ref().map(|h| h.paths.as_slice()).unwrap_or_default();
        for (path_index, http_path) in paths.iter().enumerate() {
            let field = format!("{rule_field}.http.paths[{path_index}]");
            let Some(candidate) = self.path(scope, &host_scope, field, http_path) else { continue };
            let build = self.hosts.entry(host_scope.host.clone()).or_default();
            if build.regex_reason.is_none() {
                if nginx.use_regex {
                    build.regex_reason = Some(format!("Ingress {key} sets {USE_REGEX}: \"true\""));
                } else if candidate.rewrite.is_some() {
                    build.regex_reason = Some(format!("Ingress {key} sets {REWRITE_TARGET}"));
                }
            }
            if build.root_backend.is_none() && candidate.path == "/" && candidate.path_type != PathType::Exact {
                build.root_backend = Some((key.clone(), candidate.field.clone(), http_path.backend.clone()));
            }
            build.candidates.push(candidate);
        }
    }

    /// ingress-nginx's implicit `/` location of a host the Ingress of `scope` is the first to
    /// name (`locationApplyAnnotations` on the server's root location): its denial, redirect,
    /// checks and policy in front of ingress-nginx's own default backend (see
    /// [`VirtualHost::implicit_root`]). `None` when the Ingress neither restricts access nor
    /// redirects.
    fn implicit_root(&mut self, scope: &IngressScope<'s>) -> Option<RouteAction> {
        let nginx = &scope.nginx;
        let extras = RouteExtras { client_headers: None, backend: None, fell_back: false, error_pages: scope.error_pages(&self.options.error_page_token), answers_not_found: true };
        let mut registered = BTreeMap::new();
        let checks = RoutePolicies::register(nginx, scope.key, &self.options.defaults, "/", extras, &self.default_policy, &mut registered);
        // Only access control and redirects make the host carry one (every host would, with a
        // body limit or a response header, for answers that would still be 404s).
        let envoy_checks = registered.get(&checks.key).is_some_and(|policy| !policy.allow_sources.is_empty() || !policy.deny_sources.is_empty() || policy.rate_limit.is_some());
        let filter_checks = checks.auth.is_some()
            || checks.basic_auth.is_some()
            || checks.connection_limit.is_some()
            || checks.satisfy_any.is_some()
            || checks.lists_first.is_some();
        if !envoy_checks && !filter_checks && nginx.denied.is_none() && nginx.behaviour.redirect.is_none() {
            return None;
        }
        self.policies.extend(registered);
        // ingress-nginx's own default backend: `--default-backend-service`, else its 404.
        let default_backend = self.global_default.clone().unwrap_or_else(|| ClusterName::from(NOT_FOUND_CLUSTER));
        match shape(fail_closed(Some(RouteAction::forward_to(default_backend)), nginx)?, nginx, &checks) {
            // Only the checks: nothing goes upstream.
            RouteAction::Forward(forward) => Some(RouteAction::Forward(Forward {
                host_rewrite: None,
                response: None,
                subset_hash: None,
                affinity_cookie: None,
                affinity_cookie_expires: None,
                ..forward
            })),
            other => Some(other),
        }
    }

    /// The Ingress's default backend as the fallback of `host` (the oldest Ingress's wins).
    fn host_fallback(&mut self, scope: &IngressScope<'s>, host: &str) {
        let Some(action) = &scope.own_default else { return };
        // ingress-nginx gives the host's `/` location the Ingress's annotations, its redirect
        // too (not the catch-all server's, host-less rules', which keeps none).
        let cors = action.cors().cloned().map(Box::new);
        let action = super::redirected(&scope.nginx, cors).filter(|_| !host.is_empty()).unwrap_or_else(|| action.clone());
        let key = scope.key;
        let build = self.hosts.entry(host.to_string()).or_default();
        match &build.fallback {
            None => {
                build.fallback = Some((action, key.clone(), key.origin("spec.defaultBackend")));
                self.served.insert(key.clone());
            }
            Some((_, winner, _)) if winner != key => {
                let message = format!("host {host:?} already takes its default backend from the older Ingress {winner}; ignored for this host");
                self.diagnostics.push(scope.object.clone(), "spec.defaultBackend".into(), Severity::Error, message);
            }
            Some(_) => {}
        }
    }

    /// One path: its type and backend checked and resolved, its policies registered, its
    /// ssl-passthrough claimed; `None` when it is skipped.
    fn path(&mut self, scope: &IngressScope<'s>, host_scope: &HostScope, field: String, http_path: &HTTPIngressPath) -> Option<PathCandidate> {
        let (key, object, nginx) = (scope.key, &scope.object, &scope.nginx);
        let path_type = match PathType::parse(&http_path.path_type) {
            Some(path_type) => path_type,
            None => {
                let message = match http_path.path_type.as_str() {
                    "" => "pathType is required (Exact, Prefix or ImplementationSpecific); path skipped".to_string(),
                    other => format!("unknown pathType {other:?} (Exact, Prefix or ImplementationSpecific); path skipped"),
                };
                self.diagnostics.push(object.clone(), format!("{field}.pathType"), Severity::Error, message);
                return None;
            }
        };
        let path = http_path.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into());
        if !path.starts_with('/') {
            self.diagnostics.push(object.clone(), format!("{field}.path"), Severity::Error, format!("path {path:?} must start with \"/\"; path skipped"));
            return None;
        }
        let backend_field = format!("{field}.backend");
        let fallback = nginx.upstream.default_backend.as_deref();
        let resolved = self.backends.resolve_or_default(key, &backend_field, &http_path.backend, &scope.upstream_options, fallback, &mut self.diagnostics);
        let fell_back = resolved.as_ref().is_some_and(|(_, fell_back)| *fell_back);
        let action = fail_closed(resolved.map(|(action, _)| action), nginx)?;
        let extras = RouteExtras {
            client_headers: host_scope.client_headers,
            backend: Some(&http_path.backend),
            fell_back,
            error_pages: scope.error_pages(&self.options.error_page_token),
            answers_not_found: false,
        };
        let without_auth = nginx.without_auth_at(&self.options.defaults, &path);
        let nginx = without_auth.as_ref().unwrap_or(nginx);
        let route_policies = RoutePolicies::register(nginx, key, &self.options.defaults, &path, extras, &self.default_policy, &mut self.policies);
        let action = shape(action, nginx, &route_policies);
        let defaults = &self.options.defaults;
        let https_redirect = match action {
            RouteAction::Redirect(_) => (None, None),
            _ => (nginx.behaviour.https_redirect(defaults, false, &path), nginx.behaviour.https_redirect(defaults, true, &path)),
        };
        let rewrite = nginx.rewrite_target.clone().filter(|target| *target != path);
        let answer_headers = nginx.answer_headers();
        Some(PathCandidate { ingress: key.clone(), field, path, path_type, action, rewrite, https_redirect, answer_headers, upstream: scope.upstream_options.clone() })
    }

    /// ingress-nginx's `shouldApplyGlobalAuth`: the global auth service for an Ingress without its
    /// own `auth-url` that does not say `enable-global-auth: "false"`; flags that cannot be
    /// applied deny it (503) rather than serve it without.
    fn global_auth(&mut self, nginx: &mut NginxAnnotations, object: &ObjectRef) {
        if nginx.auth.is_some() || nginx.global_auth_off || nginx.denied.is_some() {
            return;
        }
        match &self.global_auth {
            Ok(global) => nginx.auth = global.clone().map(Box::new),
            Err(reason) => {
                let message = format!("{reason}; every path of this Ingress answers 503 (fail closed)");
                self.diagnostics.push(object.clone(), "--global-auth-url".into(), Severity::Error, message);
                nginx.deny(503, "--global-auth-url".into());
            }
        }
    }

    /// `ssl-passthrough`, as ingress-nginx's: a host some Ingress asks it for sends its TLS
    /// undecrypted to the backend of the host's `/` location, whichever Ingress's path that is,
    /// unless the host asks for client certificates or is a wildcard.
    fn pass_through(&mut self) {
        for (key, host) in std::mem::take(&mut self.passthrough_requests) {
            let (object, field) = (ingress_ref(&key), format!("metadata.annotations[{NGINX_PREFIX}ssl-passthrough]"));
            if let Some(checked_by) = self.client_hosts.get(&host).filter(|check| check.config.asks()).map(|check| check.ingress.clone()) {
                let message = format!("host {host:?} asks for client certificates (Ingress {checked_by}); not passed through, served with TLS terminated");
                self.diagnostics.push(object, field, Severity::Error, message);
                continue;
            }
            // ingress-nginx's passthrough proxy compares the SNI with each host as a string, so it
            // never passes a wildcard's names through; Envoy's SNI match would take every name
            // below it, other Ingresses' TLS hosts included.
            if host.starts_with("*.") {
                let message = format!("host {host:?} is a wildcard: not passed through (ingress-nginx matches the SNI exactly), served with TLS terminated");
                self.diagnostics.push(object, field, Severity::Warning, message);
                continue;
            }
            if self.passthrough_hosts.contains_key(&host) {
                self.served.insert(key);
                continue;
            }
            let Some((owner, path_field, backend)) = self.hosts.get(&host).and_then(|build| build.root_backend.clone()) else {
                let message = format!("host {host:?} has no `/` path, whose backend ingress-nginx passes the TLS to (its connections would fail there); not passed through, served with TLS terminated");
                self.diagnostics.push(object, field, Severity::Warning, message);
                continue;
            };
            // Plain TCP to the endpoints: whatever `backend-protocol` says, the TLS is the client's.
            let plain = self.backends.resolve(&owner, &format!("{path_field}.backend"), &backend, &UpstreamOptions::default(), &mut self.diagnostics);
            if let Some(cluster) = plain.as_ref().and_then(single_cluster) {
                self.passthrough_hosts.insert(host, Passthrough { cluster, origin: owner.origin(&path_field) });
                self.served.insert(key);
            }
        }
    }

    /// The Ingress's TLS entries: each usable Secret serves the names it lists (or the Ingress's
    /// rule hosts) that no older Ingress claimed.
    fn tls(&mut self, scope: &IngressScope<'s>, spec: &IngressSpec, own_hosts: &[String]) {
        for entry in spec.tls.iter().flatten() {
            self.tls_requested.extend(requested_tls_names(entry, own_hosts));
        }
        for (tls_index, entry) in spec.tls.iter().flatten().enumerate() {
            self.tls_entry(scope, &format!("spec.tls[{tls_index}]"), entry, own_hosts);
        }
        self.tls_by_certificate_names(scope, spec, own_hosts);
    }

    /// ingress-nginx's second way to a certificate (`extractTLSSecretName`): a rule host that no
    /// TLS entry of its Ingress lists is served with the first of those entries' certificates
    /// that names it (a SAN, or a one-label wildcard SAN, covering it), and redirected to HTTPS.
    /// When none names it, ingress-nginx gives it the default certificate, so it is a TLS host all
    /// the same (redirected to HTTPS; a warning says so).
    fn tls_by_certificate_names(&mut self, scope: &IngressScope<'s>, spec: &IngressSpec, own_hosts: &[String]) {
        let entries: Vec<&k8s_openapi::api::networking::v1::IngressTLS> = spec.tls.iter().flatten().collect();
        // An entry without hosts already serves every rule host.
        if entries.is_empty() || entries.iter().any(|entry| entry.hosts.as_ref().is_none_or(Vec::is_empty)) {
            return;
        }
        let listed: BTreeSet<String> = entries.iter().flat_map(|entry| requested_tls_names(entry, own_hosts)).collect();
        let key = scope.key;
        for host in own_hosts.iter().filter(|host| !host.is_empty() && !listed.contains(*host)) {
            let named = !host.starts_with("*.") && self.tls_by_certificate_name(key, &entries, host);
            // (`own_hosts` holds no host of another namespace under `--host-ownership namespace`.)
            if !named && !covers(&self.tls_requested, host) {
                self.tls_requested.insert(host.clone());
                let message = format!(
                    "host {host:?} is in no TLS entry of this Ingress and no certificate of them names it: it is served over HTTPS with {DEFAULT_CERTIFICATE_NOTE} (list it in spec.tls[].hosts, or set ssl-redirect: \"false\")"
                );
                self.diagnostics.push(scope.object.clone(), "spec.tls".into(), Severity::Warning, message);
            }
        }
    }

    /// Serve `host` with the first certificate of `entries` that names it; `false` if none does.
    fn tls_by_certificate_name(&mut self, key: &ObjectKey, entries: &[&k8s_openapi::api::networking::v1::IngressTLS], host: &str) -> bool {
        let secrets = entries.iter().filter_map(|entry| entry.secret_name.as_deref().filter(|name| !name.is_empty()));
        for secret_key in secrets.map(|name| ObjectKey::new(key.namespace.clone(), name)) {
            let Ok(certificate) = self.tls_claims.certificate(self.state, &secret_key) else { continue };
            if !covers(&self.tls_claims.certificate_names(&secret_key, &certificate), host) {
                continue;
            }
            // Another namespace's host, or a name an older Ingress serves with its own
            // certificate: left as it is (the rules' own diagnostics say why).
            if self.host_owners.claim(host, key, self.options.host_ownership).is_ok() && self.tls_claims.claim(host, &secret_key, key).is_ok() {
                self.tls_requested.insert(host.to_string());
                self.served.insert(key.clone());
                self.tls_claims.used.insert(secret_key, certificate);
            }
            return true;
        }
        false
    }

    fn tls_entry(&mut self, scope: &IngressScope<'s>, field: &str, entry: &k8s_openapi::api::networking::v1::IngressTLS, own_hosts: &[String]) {
        let (key, object) = (scope.key, &scope.object);
        let Some(secret_name) = entry.secret_name.as_deref().filter(|s| !s.is_empty()) else {
            let message = format!("no secretName: its hosts are served over HTTPS with {DEFAULT_CERTIFICATE_NOTE}");
            self.diagnostics.push(object.clone(), format!("{field}.secretName"), Severity::Warning, message);
            return;
        };
        let secret_key = ObjectKey::new(key.namespace.clone(), secret_name);
        let certificate = match self.tls_claims.certificate(self.state, &secret_key) {
            Ok(certificate) => certificate,
            Err(reason) => {
                let message = format!("Secret {secret_key} {reason}; TLS entry skipped: its hosts are served over HTTPS with {DEFAULT_CERTIFICATE_NOTE}");
                self.diagnostics.push(object.clone(), format!("{field}.secretName"), Severity::Error, message);
                return;
            }
        };
        if let Some(warning) = self.options.now.and_then(|now| tls::validity_warning(&certificate.cert_chain_pem, now)) {
            self.diagnostics.push(object.clone(), format!("{field}.secretName"), Severity::Warning, format!("Secret {secret_key}: {warning}"));
        }
        let mut names: Vec<String> = Vec::new();
        match entry.hosts.as_deref() {
            Some(listed) if !listed.is_empty() => {
                for (host_index, host) in listed.iter().enumerate() {
                    let reason = match normalize_host(host) {
                        Ok(name) if !name.is_empty() => {
                            names.push(name);
                            continue;
                        }
                        Ok(_) => "empty host; skipped".to_string(),
                        Err(reason) => format!("{reason}; skipped"),
                    };
                    self.diagnostics.push(object.clone(), format!("{field}.hosts[{host_index}]"), Severity::Error, reason);
                }
            }
            _ => names.extend(own_hosts.iter().filter(|h| !h.is_empty()).cloned()),
        }
        if names.is_empty() {
            self.diagnostics.push(object.clone(), field.to_string(), Severity::Warning, "no host to serve with this certificate; TLS entry unused".into());
            return;
        }
        self.warn_unnamed_hosts(object, field, &secret_key, &certificate, &names);
        let mut claimed_any = false;
        for name in names {
            if let Err(owner) = self.host_owners.claim(&name, key, self.options.host_ownership) {
                let message = format!("server name {name:?} belongs to namespace {:?} ({owner}); ignored for this name (--host-ownership=namespace)", owner.namespace);
                self.diagnostics.push(object.clone(), field.to_string(), Severity::Error, message);
                continue;
            }
            match self.tls_claims.claim(&name, &secret_key, key) {
                Ok(()) => claimed_any = true,
                Err((winner_secret, winner_ingress)) => {
                    let message = format!("server name {name:?} is already served with Secret {winner_secret} by the older Ingress {winner_ingress}; ignored for this name");
                    self.diagnostics.push(object.clone(), field.to_string(), Severity::Error, message);
                }
            }
        }
        if claimed_any {
            self.served.insert(key.clone());
            self.tls_claims.used.insert(secret_key, certificate);
        }
    }

    /// A warning for each of `names` the certificate does not name (as ingress-nginx's "does not
    /// contain a Common Name or Subject Alternative Name for server"): Envoy picks certificates by
    /// their names, so a client asking for that host gets another served certificate that names
    /// it (another TLS entry's), else the default certificate.
    fn warn_unnamed_hosts(&mut self, object: &ObjectRef, field: &str, secret_key: &ObjectKey, certificate: &TlsCertificate, names: &[String]) {
        let certificate_names = self.tls_claims.certificate_names(secret_key, certificate);
        let unnamed: Vec<&String> = names.iter().filter(|name| !covers(&certificate_names, name)).collect();
        if unnamed.is_empty() {
            return;
        }
        let listed: Vec<&str> = certificate_names.iter().take(5).map(String::as_str).collect();
        let more = if certificate_names.len() > listed.len() { ", …" } else { "" };
        for name in unnamed {
            let message = format!(
                "Secret {secret_key}: its certificate does not name {name:?} (it names {}{more}): a client asking for {name:?} gets another TLS entry's certificate that names it, if one does, else {DEFAULT_CERTIFICATE_NOTE}",
                if listed.is_empty() { "nothing".to_string() } else { listed.join(", ") }
            );
            self.diagnostics.push(object.clone(), field.to_string(), Severity::Warning, message);
        }
    }

    /// Stage 3 for one host: its candidates in the filter's order (ingress-nginx's for regex
    /// mode, capped), the first of each identical match kept.
    fn virtual_host(&mut self, host: String, build: HostBuild, regex_routes: &mut usize) -> VirtualHost {
        let host_has_tls = covers(&self.tls_requested, &host);
        let regex_mode = build.regex_reason.is_some();
        if let Some(reason) = &build.regex_reason {
            self.notes.regex_hosts.insert(host.clone(), reason.clone());
        }
        let mut candidates = build.candidates;
        if regex_mode {
            // Caps (the filter refuses a table beyond them): the oldest paths are kept.
            let room = MAX_REGEX_ROUTES_PER_HOST.min(MAX_REGEX_ROUTES.saturating_sub(*regex_routes));
            for dropped in candidates.drain(room.min(candidates.len())..) {
                let message = format!(
                    "host {host:?} is in regex mode and already has {room} regex paths (at most {MAX_REGEX_ROUTES_PER_HOST} per host and {MAX_REGEX_ROUTES} in all); path skipped"
                );
                self.diagnostics.push(ingress_ref(&dropped.ingress), format!("{}.path", dropped.field), Severity::Error, message);
            }
            *regex_routes += candidates.len();
            // ingress-nginx: longest path first, then reverse byte order (stable: then age).
            candidates.sort_by(|a, b| b.path.len().cmp(&a.path.len()).then_with(|| b.path.cmp(&a.path)));
        }
        let mut routes: Vec<Route> = Vec::new();
        let mut claimed: BTreeMap<(u8, String), (ObjectKey, String)> = BTreeMap::new();
        for candidate in candidates {
            let mut route = route_for(&candidate, regex_mode);
            route.https_redirect = if host_has_tls { candidate.https_redirect.1.clone() } else { candidate.https_redirect.0.clone() };
            let object = ingress_ref(&candidate.ingress);
            if let Err(reason) = check_route(&route) {
                self.diagnostics.push(object, format!("{}.path", candidate.field), Severity::Error, format!("{reason}; path skipped"));
                continue;
            }
            // Prefix `/a` and `/a/` match the same requests.
            let identity = match &route.path {
                PathMatch::Exact(p) => (0u8, p.clone()),
                PathMatch::Prefix(p) => (1, trim_trailing_slash(p).to_owned()),
                PathMatch::Regex(p) => (2, p.clone()),
            };
            if let Some((winner, winner_field)) = claimed.get(&identity) {
                let who = if *winner == candidate.ingress { "this Ingress".to_owned() } else { format!("the older Ingress {winner}") };
                let message = format!("host {host:?} path {} is already served by {who} ({winner_field}); path ignored", describe_match(&route.path));
                self.diagnostics.push(object, candidate.field.clone(), Severity::Error, message);
                continue;
            }
            claimed.insert(identity, (candidate.ingress.clone(), candidate.field.clone()));
            self.served.insert(candidate.ingress.clone());
            routes.push(route);
        }
        if !regex_mode {
            // The filter does not depend on the order of Exact/Prefix routes; keep it readable.
            routes.sort_by_key(|route| match_sort_key(&route.path));
        }
        let fallback = build.fallback.map(|(action, _, origin)| {
            self.notes.host_fallbacks.insert(host.clone(), origin);
            action
        });
        let (plain, with_tls) = build.root_https_redirect.unwrap_or_default();
        let fallback_https_redirect = if host_has_tls { with_tls } else { plain };
        // Of use only where no route takes every path and nothing else answers the rest.
        let takes_every_path = routes.iter().any(|route| match &route.path {
            PathMatch::Prefix(p) => trim_trailing_slash(p) == "/",
            PathMatch::Regex(p) => p == "(?i)/",
            PathMatch::Exact(_) => false,
        });
        let implicit_root = build.implicit_root.filter(|_| fallback.is_none() && !takes_every_path).map(|(action, ingress)| {
            self.notes.implicit_roots.insert(host.clone(), ingress);
            action
        });
        VirtualHost { host, routes, fallback, fallback_https_redirect, implicit_root, app_root: build.app_root, client_certificate: None }
    }

    /// Stages 3 and 4: canaries attached, the hosts built, the table checked and the Model made.
    pub(super) fn finish(mut self) -> (Translation, TranslationNotes) {
        self.pass_through();
        let attached = canary::attach(&self.canaries, &mut self.hosts, &mut self.backends, &mut self.diagnostics);
        self.served.extend(attached);
        let hosts = std::mem::take(&mut self.hosts);
        let mut virtual_hosts = www_redirect_hosts(&hosts, &self.options.defaults);
        let mut regex_routes = 0usize;
        for (host, build) in hosts {
            let vhost = self.virtual_host(host, build, &mut regex_routes);
            virtual_hosts.push(vhost);
        }
        let alias_hosts = self.aliases.virtual_hosts(&virtual_hosts, &mut self.notes.aliases, &mut self.diagnostics);
        virtual_hosts.extend(alias_hosts);
        auth_tls::close(&self.closed_hosts, &self.notes.aliases, &mut virtual_hosts);
        let client_validation = auth_tls::apply(&self.client_hosts, &self.notes.aliases, &mut virtual_hosts);
        let cipher_suites = ciphers::apply(&self.cipher_hosts, &self.notes.aliases, &virtual_hosts);
        let client_cipher_order = ciphers::apply(&self.cipher_order_hosts, &self.notes.aliases, &virtual_hosts);
        let prefer_client_ciphers = client_cipher_order.into_iter().filter(|(_, client)| *client).map(|(host, _)| host).collect();
        virtual_hosts.sort_by(|a, b| a.host.cmp(&b.host));
        let table = self.table(virtual_hosts);

        let mut clusters = std::mem::take(&mut self.backends.clusters);
        retain_used_clusters(&mut clusters, &table);
        self.alias_certificates();
        let Certificates { tls_servers, certificates, default_certificate, selection: certificate_selection } = self.certificates();
        let mut diagnostics = self.diagnostics.0;
        diagnostics.sort();
        diagnostics.dedup();
        let mut model = Model {
            route_table: table,
            clusters,
            tls_servers,
            certificates,
            default_certificate,
            certificate_selection,
            shielded_names: Vec::new(),
            default_policy: self.default_policy,
            policies: self.policies,
            hsts: self.options.defaults.hsts_header(),
            hidden_response_headers: self.options.defaults.hide_headers.clone(),
            auth_services: self.auth_services,
            passthrough: self.passthrough_hosts,
            client_validation,
            cipher_suites,
            prefer_client_ciphers,
        };
        model.shielded_names = claims::shielded_names(&model);
        let translation = Translation {
            model,
            diagnostics,
            served_ingresses: self.served,
            denied_ingresses: self.denied,
            loaded_ingresses: self.loaded,
            endpoint_reads: self.backends.slices.into_reads(),
        };
        (translation, self.notes)
    }

    /// The route table of `virtual_hosts`, checked as the filter will compile it; the policies
    /// no route names are dropped and the error-page clusters listed.
    fn table(&mut self, virtual_hosts: Vec<VirtualHost>) -> RouteTable {
        let mut table = RouteTable {
            schema: SCHEMA_VERSION,
            version: String::new(),
            hosts: virtual_hosts,
            default_backend_is_catch_all: self.default_backend.is_some(),
            default_backend: self.catch_all_action(),
            passwords: std::mem::take(&mut self.passwords),
            error_page_clusters: Vec::new(),
            error_page_token: String::new(),
            trust_forwarded_headers: self.options.trust_forwarded_headers,
            proxy_protocol: self.options.proxy_protocol,
            answer_headers: header_maps::default_answer_headers(&self.global_headers),
            default_server_denied: default_server_denied(&self.options.defaults),
            log_route: self.options.log_route,
            default_server_logged: self.options.default_server_logged,
        };
        ensure_compiles(&mut table, &mut self.diagnostics);
        let bytes = self.complete(&mut table);
        if bytes > table_size::LIMIT {
            let ingresses = &self.state.ingresses;
            let age = |key: &ObjectKey| ingresses.get(key).map(|ingress| age_key(ingress, key));
            for key in table_size::fit(&mut table, bytes, table_size::LIMIT, age) {
                self.served.remove(&key);
                let message = format!(
                    "{} {bytes} bytes, more than the {} the filter accepts; the newest Ingresses are left out until it fits",
                    table_size::NOT_SERVED,
                    wasm_ingress_filter::limits::MAX_TABLE_JSON_BYTES
                );
                self.diagnostics.push(ingress_ref(&key), String::new(), Severity::Error, message);
            }
            self.complete(&mut table);
        }
        table
    }

    /// The table's policies, error pages and version, for its routes; returns the bytes of its
    /// JSON.
    fn complete(&mut self, table: &mut RouteTable) -> usize {
        complete_table(table, &mut self.policies, &self.options.error_page_token)
    }

    /// What the table answers when no host or path does: the catch-all Ingress's default backend,
    /// else `--default-backend-service`, else nothing (the filter's 404).
    fn catch_all_action(&mut self) -> Option<RouteAction> {
        if let Some((action, _)) = self.default_backend.take() {
            return Some(action);
        }
        let cluster = self.global_default.clone()?;
        let service = self.options.default_backend_service.clone().unwrap_or_default();
        self.notes.default_backend = Some(DefaultBackendSource::Flag(service));
        Some(RouteAction::forward_to(cluster))
    }

    /// ingress-nginx serves a `server-alias` over HTTPS with its host's certificate when that
    /// certificate names the alias (`configureCertificates`); otherwise with the default one.
    fn alias_certificates(&mut self) {
        for (alias, host) in &self.notes.aliases {
            // The host's claim: its own name, else the wildcard that covers it.
            let wildcard = || host.split_once('.').and_then(|(_, rest)| self.tls_claims.names.get(&format!("*.{rest}")));
            let Some((secret, ingress)) = self.tls_claims.names.get(host).or_else(wildcard).cloned() else { continue };
            let Some(names) = self.tls_claims.used_certificate_names(&secret) else { continue };
            if covers(&names, alias) {
                // A name an Ingress claims for itself keeps its claim.
                let _ = self.tls_claims.claim(alias, &secret, &ingress);
            }
        }
    }

    /// The TLS servers, their certificates (and the clusters' client certificates) and the
    /// default certificate (`--default-ssl-certificate`), ordered so that no name is offered a
    /// certificate its Ingress did not win (see `sni`).
    fn certificates(&mut self) -> Certificates {
        let options = self.options;
        let default_certificate = options.default_certificate.as_ref().and_then(|key| match self.tls_claims.certificate(self.state, key) {
            Ok(certificate) => {
                self.tls_claims.used.insert(key.clone(), certificate);
                Some(key.to_string())
            }
            Err(reason) => {
                let secret = ObjectRef { kind: "Secret".into(), namespace: key.namespace.clone(), name: key.name.clone() };
                let message = format!("--default-ssl-certificate: Secret {key} {reason}; the controller's self-signed certificate is offered instead");
                self.diagnostics.push(secret, String::new(), Severity::Error, message);
                None
            }
        });
        let default_key = options.default_certificate.as_ref().filter(|_| default_certificate.is_some());
        let (certificate_order, selection) = self.tls_claims.guard(default_key, &self.host_owners, &mut self.diagnostics);
        let (tls_servers, mut certificates) = std::mem::take(&mut self.tls_claims).into_model(&certificate_order);
        for (name, certificate) in std::mem::take(&mut self.client_certificates) {
            certificates.entry(name).or_insert(certificate);
        }
        Certificates { tls_servers, certificates, default_certificate, selection }
    }
}

/// The Model's TLS part, as [`Translator::certificates`] settles it.
struct Certificates {
    tls_servers: Vec<crate::model::TlsServer>,
    certificates: BTreeMap<String, TlsCertificate>,
    default_certificate: Option<String>,
    selection: BTreeMap<String, CertificateSelection>,
}

/// The table's policies (those its routes name), error pages and version; returns the bytes of
/// its JSON. Shared by the full translation and the incremental one (see `incremental`).
pub(super) fn complete_table(table: &mut RouteTable, policies: &mut BTreeMap<String, RoutePolicy>, error_page_token: &str) -> usize {
    // Most routes take the default policy (""): leave it out before collecting.
    let used_policies: BTreeSet<&str> = policy_keys(table).filter(|key| !key.is_empty()).collect();
    policies.retain(|key, _| used_policies.contains(key.as_str()));
    let error_pages: BTreeSet<&ClusterName> = policies.values().filter_map(|p| p.custom_errors.as_ref()?.cluster.as_ref()).collect();
    table.error_page_clusters = error_pages.into_iter().cloned().collect();
    table.error_page_token = if table.error_page_clusters.is_empty() { String::new() } else { error_page_token.to_string() };
    table.version = String::new();
    let (version, bytes) = table_version_and_bytes(table);
    table.version = version;
    bytes
}
