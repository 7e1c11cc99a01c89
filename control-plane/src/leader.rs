//! Leader election with a `coordination.k8s.io/v1` Lease, so that of several control-plane replicas
//! (all of which serve xDS) exactly one writes Ingress status and Events.
//!
//! The decision is a pure function (`decide`: what we last saw of the Lease + when we saw it change +
//! now -> create / renew / take over / follow), table-tested; `LeaderElection` is the thin async shell
//! that GETs the Lease, applies the decision with a create or an optimistic-concurrency replace (a
//! `409 Conflict` means another replica won the race), and publishes `is_leader` on a watch channel.
//! Like client-go, expiry is judged by *our* clock from the moment the record last changed, never by
//! comparing the holder's `renewTime` with our wall clock, so clock skew between nodes cannot make two
//! leaders. A leader that cannot renew for `renew_deadline` (< `lease_duration`) steps down before
//! anyone else may take over. This module must not serve, translate, or write anything but the Lease.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::source::kube::{AccessScope, ApiAccess};

/// What leader election needs: the Lease in the control plane's own namespace only.
pub const API_ACCESS: &[ApiAccess] = &[ApiAccess {
    group: "coordination.k8s.io",
    resource: "leases",
    verbs: &["create", "get", "update"],
    scope: AccessScope::OwnNamespace,
}];

pub const DEFAULT_LEASE_NAME: &str = "wasm-ingress-leader";
pub const DEFAULT_LEASE_NAMESPACE: &str = "wasm-ingress";

/// Timing and identity (defaults as client-go's: 15 s lease, 10 s renew deadline, 2 s retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// `holderIdentity`: unique per process (pod name + random suffix).
    pub identity: String,
    /// `leaseDurationSeconds` we write; others may take over this long after our last renewal.
    pub lease_duration: Duration,
    /// A leader that has not renewed for this long stops acting as leader.
    pub renew_deadline: Duration,
    /// Time between rounds (renewals when leading, checks when following).
    pub retry_period: Duration,
}

impl LeaseConfig {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, identity: impl Into<String>) -> LeaseConfig {
        LeaseConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// `$POD_NAME` (downward API) or `$HOSTNAME` (the pod name in Kubernetes), plus a random suffix so two
/// processes never share an identity.
pub fn default_identity() -> String {
    let base = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "wasm-ingress".to_string());
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.write_u32(std::process::id());
    format!("{base}-{:08x}", hasher.finish() as u32)
}

/// The parts of a Lease record whose change means "its holder is alive".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: Option<String>,
    pub renew_time: Option<Timestamp>,
    pub lease_duration_seconds: Option<i32>,
    pub transitions: i32,
}

impl LeaseRecord {
    pub fn of(lease: &Lease) -> LeaseRecord {
        let spec = lease.spec.clone().unwrap_or_default();
        LeaseRecord {
            holder: spec.holder_identity.filter(|holder| !holder.is_empty()),
            renew_time: spec.renew_time.map(|time| time.0),
            lease_duration_seconds: spec.lease_duration_seconds,
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }
}

/// A Lease record and when (by our clock) we first saw it in this exact state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub record: LeaseRecord,
    pub observed_at: Instant,
}

/// Keep the time of first sight while the record is unchanged; restart it when it changes.
pub fn observe(previous: Option<&Observation>, record: LeaseRecord, now: Instant) -> Observation {
    match previous {
        Some(previous) if previous.record == record => previous.clone(),
        _ => Observation { record, observed_at: now },
    }
}

/// What to do with the Lease this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAction {
    /// There is no Lease: create it holding it ourselves.
    Create,
    /// We hold it: renew it.
    Renew,
    /// It is free (no holder) or its holder stopped renewing: take it over.
    TakeOver,
    /// Someone else holds it and is renewing it.
    Follow { holder: String },
}

/// The decision. `default_duration` applies when the record has no (or a non-positive) duration.
pub fn decide(lease: Option<&Observation>, identity: &str, now: Instant, default_duration: Duration) -> LeaseAction {
    let Some(observation) = lease else { return LeaseAction::Create };
    let Some(holder) = observation.record.holder.as_deref() else { return LeaseAction::TakeOver };
    if holder == identity {
        return LeaseAction::Renew;
    }
    let duration = observation
        .record
        .lease_duration_seconds
        .filter(|seconds| *seconds > 0)
        .map_or(default_duration, |seconds| Duration::from_secs(seconds.unsigned_abs().into()));
    if now.saturating_duration_since(observation.observed_at) >= duration {
        LeaseAction::TakeOver
    } else {
        LeaseAction::Follow { holder: holder.to_string() }
    }
}

/// Whether we still act as leader: a successful create/renew/take-over less than `renew_deadline` ago.
pub fn is_leading(last_renewed: Option<Instant>, now: Instant, renew_deadline: Duration) -> bool {
    last_renewed.is_some_and(|renewed| now.saturating_duration_since(renewed) < renew_deadline)
}

/// The spec to write for `action` (Create, Renew or TakeOver) over the current one.
pub fn next_spec(current: Option<&LeaseSpec>, action: &LeaseAction, identity: &str, duration: Duration, now: Timestamp) -> LeaseSpec {
    let current = current.cloned().unwrap_or_default();
    let seconds = i32::try_from(duration.as_secs()).unwrap_or(i32::MAX).max(1);
    let transitions = current.lease_transitions.unwrap_or(0);
    let (acquire_time, transitions) = match action {
        LeaseAction::Renew => (current.acquire_time.clone().unwrap_or(MicroTime(now)), transitions),
        LeaseAction::TakeOver => (MicroTime(now), transitions.saturating_add(1)),
        LeaseAction::Create | LeaseAction::Follow { .. } => (MicroTime(now), 0),
    };
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(seconds),
        acquire_time: Some(acquire_time),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..current
    }
}

/// The async shell: one `step` per `retry_period`.
pub struct LeaderElection {
    api: Api<Lease>,
    config: LeaseConfig,
    observation: Option<Observation>,
    last_renewed: Option<Instant>,
}

impl LeaderElection {
    pub fn new(client: Client, config: LeaseConfig) -> LeaderElection {
        let api = Api::namespaced(client, &config.namespace);
        LeaderElection { api, config, observation: None, last_renewed: None }
    }

    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// One round: read the Lease, decide, write. Returns whether we are leader afterwards.
    pub async fn step(&mut self) -> bool {
        let now = Instant::now();
        let lease = match self.api.get_opt(&self.config.name).await {
            Ok(lease) => lease,
            Err(error) => {
                tracing::warn!(%error, lease = %self.config.name, "could not read the leader Lease");
                return is_leading(self.last_renewed, now, self.config.renew_deadline);
            }
        };
        self.observation = lease.as_ref().map(|lease| observe(self.observation.as_ref(), LeaseRecord::of(lease), now));
        let action = decide(self.observation.as_ref(), &self.config.identity, now, self.config.lease_duration);
        let spec = next_spec(
            lease.as_ref().and_then(|lease| lease.spec.as_ref()),
            &action,
            &self.config.identity,
            self.config.lease_duration,
            Timestamp::now(),
        );
        let written = match (&action, lease) {
            (LeaseAction::Follow { holder }, _) => {
                if self.last_renewed.take().is_some() {
                    tracing::warn!(%holder, "lost the leader Lease; stepping down");
                }
                return false;
            }
            (LeaseAction::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (LeaseAction::Renew | LeaseAction::TakeOver, Some(mut lease)) => {
                // metadata.resourceVersion is kept: the replace fails with 409 if anyone wrote since.
                lease.spec = Some(spec);
                self.api.replace(&self.config.name, &PostParams::default(), &lease).await
            }
            (LeaseAction::Renew | LeaseAction::TakeOver, None) => return false,
        };
        match written {
            Ok(lease) => {
                if !is_leading(self.last_renewed, now, self.config.renew_deadline) {
                    tracing::info!(identity = %self.config.identity, ?action, "became leader");
                }
                self.last_renewed = Some(now);
                self.observation = Some(observe(None, LeaseRecord::of(&lease), now));
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                if self.last_renewed.take().is_some() {
                    tracing::warn!("another replica wrote the leader Lease first; stepping down");
                }
            }
            Err(error) => tracing::warn!(%error, ?action, "could not write the leader Lease"),
        }
        is_leading(self.last_renewed, now, self.config.renew_deadline)
    }

    /// Step every `retry_period` until `is_leader`'s receivers are all gone.
    pub async fn run(mut self, is_leader: watch::Sender<bool>) {
        let mut tick = tokio::time::interval(self.config.retry_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let leading = self.step().await;
            is_leader.send_if_modified(|current| std::mem::replace(current, leading) != leading);
            if is_leader.is_closed() {
                return;
            }
        }
    }
}

/// Start leader election; the receiver says whether this replica is leader now.
pub fn spawn(client: Client, config: LeaseConfig) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(LeaderElection::new(client, config).run(tx));
    (rx, task)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const ME: &str = "wasm-ingress-0-aaaa";
    const OTHER: &str = "wasm-ingress-1-bbbb";
    const DEFAULT: Duration = Duration::from_secs(15);

    fn record(holder: Option<&str>, duration: Option<i32>) -> LeaseRecord {
        LeaseRecord {
            holder: holder.map(str::to_string),
            renew_time: Some(Timestamp::UNIX_EPOCH),
            lease_duration_seconds: duration,
            transitions: 3,
        }
    }

    #[test]
    fn decisions() {
        let start = Instant::now();
        let seen = |holder: Option<&str>, duration: Option<i32>| Observation { record: record(holder, duration), observed_at: start };
        let cases: [(&str, Option<Observation>, Duration, LeaseAction); 8] = [
            ("no lease: create it", None, Duration::ZERO, LeaseAction::Create),
            ("we hold it: renew", Some(seen(Some(ME), Some(15))), Duration::from_secs(3), LeaseAction::Renew),
            ("we hold it, even long unrenewed: renew", Some(seen(Some(ME), Some(15))), Duration::from_secs(60), LeaseAction::Renew),
            ("released (no holder): take over", Some(seen(None, Some(15))), Duration::ZERO, LeaseAction::TakeOver),
            (
                "other holder renewing: follow",
                Some(seen(Some(OTHER), Some(15))),
                Duration::from_secs(14),
                LeaseAction::Follow { holder: OTHER.into() },
            ),
            ("other holder silent for the lease duration: take over", Some(seen(Some(OTHER), Some(15))), Duration::from_secs(15), LeaseAction::TakeOver),
            ("the record's own duration counts", Some(seen(Some(OTHER), Some(5))), Duration::from_secs(6), LeaseAction::TakeOver),
            (
                "missing duration falls back to the default",
                Some(seen(Some(OTHER), None)),
                Duration::from_secs(10),
                LeaseAction::Follow { holder: OTHER.into() },
            ),
        ];
        for (name, observation, elapsed, expected) in cases {
            assert_eq!(decide(observation.as_ref(), ME, start + elapsed, DEFAULT), expected, "{name}");
        }
    }

    #[test]
    fn expiry_is_measured_from_when_the_record_last_changed() {
        let start = Instant::now();
        let first = observe(None, record(Some(OTHER), Some(15)), start);
        // Unchanged 10 s later: still observed at `start`.
        let same = observe(Some(&first), record(Some(OTHER), Some(15)), start + Duration::from_secs(10));
        assert_eq!(same.observed_at, start);
        // The holder renewed (renewTime changed): the clock restarts.
        let mut renewed = record(Some(OTHER), Some(15));
        renewed.renew_time = Some(Timestamp::now());
        let later = observe(Some(&same), renewed, start + Duration::from_secs(12));
        assert_eq!(later.observed_at, start + Duration::from_secs(12));
        assert_eq!(
            decide(Some(&later), ME, start + Duration::from_secs(20), DEFAULT),
            LeaseAction::Follow { holder: OTHER.into() }
        );
        assert_eq!(decide(Some(&later), ME, start + Duration::from_secs(27), DEFAULT), LeaseAction::TakeOver);
    }

    #[test]
    fn leader_steps_down_when_it_cannot_renew_within_the_deadline() {
        let start = Instant::now();
        let deadline = Duration::from_secs(10);
        assert!(!is_leading(None, start, deadline));
        assert!(is_leading(Some(start), start + Duration::from_secs(9), deadline));
        assert!(!is_leading(Some(start), start + Duration::from_secs(10), deadline));
    }

    #[test]
    fn next_spec_keeps_acquire_time_on_renew_and_counts_transitions_on_take_over() {
        let acquired = MicroTime(Timestamp::UNIX_EPOCH);
        let current = LeaseSpec {
            holder_identity: Some(OTHER.into()),
            acquire_time: Some(acquired.clone()),
            renew_time: Some(acquired.clone()),
            lease_duration_seconds: Some(15),
            lease_transitions: Some(4),
            ..LeaseSpec::default()
        };
        let now = Timestamp::now();
        let taken = next_spec(Some(&current), &LeaseAction::TakeOver, ME, DEFAULT, now);
        assert_eq!(taken.holder_identity.as_deref(), Some(ME));
        assert_eq!(taken.lease_transitions, Some(5));
        assert_eq!(taken.acquire_time, Some(MicroTime(now)));
        assert_eq!(taken.renew_time, Some(MicroTime(now)));
        assert_eq!(taken.lease_duration_seconds, Some(15));

        let mine = LeaseSpec { holder_identity: Some(ME.into()), ..current };
        let renewed = next_spec(Some(&mine), &LeaseAction::Renew, ME, DEFAULT, now);
        assert_eq!(renewed.acquire_time, Some(acquired));
        assert_eq!(renewed.renew_time, Some(MicroTime(now)));
        assert_eq!(renewed.lease_transitions, Some(4));

        let created = next_spec(None, &LeaseAction::Create, ME, DEFAULT, now);
        assert_eq!(created.lease_transitions, Some(0));
        assert_eq!(created.holder_identity.as_deref(), Some(ME));
    }

    #[test]
    fn identities_are_unique_per_process_start() {
        assert_ne!(default_identity(), default_identity());
    }
}
