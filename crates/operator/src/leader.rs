//! Leader election on a `coordination.k8s.io/v1` Lease, so that two replicas of the operator
//! never write at once: it opens the write gate (`write_gate.rs`) while this operator leads.
//!
//! The protocol is client-go's: the holder renews `renewTime` every `renew`; a candidate takes
//! the lease once `renewTime + leaseDurationSeconds` is past, with an update carrying the
//! resourceVersion it read, so of two candidates racing for an expired lease only one wins.
//! The holder steps down on its own when it could not renew for `duration - renew`, which is
//! before any candidate may take the lease: it closes the gate first, then stops its
//! controller, so it sends no write after it knows it may have lost the lease.
//!
//! Times come from the injected clock and waits from tokio's timers, so the whole election
//! runs on virtual time in tests. (`kube-lease-manager` was the first choice, but it reads
//! `SystemTime::now()` for expiry and never reports a renewal that keeps failing as a loss.)

use std::future::Future;
use std::time::Duration;

use futures::FutureExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

use crate::controller::{self, Options};
use crate::metrics::{Metrics, Role};
use gamedeploy_clock::SharedClock;

/// How often a standby looks at the lease, and how soon a failed renewal is retried: a
/// released lease is taken within this.
pub const RETRY: Duration = Duration::from_secs(2);

/// The lease and the timing of the election.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// Who holds it: the pod's name, unique among the replicas.
    pub identity: String,
    /// How long a lease lasts after its last renewal (`leaseDurationSeconds`).
    pub duration: Duration,
    /// How often the holder renews it.
    pub renew: Duration,
}

/// Settings that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "the lease renewal interval ({renew}s) must be shorter than the lease duration ({duration}s), or the leader would lose the lease between two renewals"
    )]
    RenewTooSlow { renew: u64, duration: u64 },
    #[error("the lease duration must be a whole number of seconds, at least 1")]
    Duration,
    #[error("the leader's identity is empty (set HOSTNAME)")]
    NoIdentity,
    #[error(
        "the lease name '{name}' is not a valid object name: {why} (pass --lease-name, e.g. gamedeploy-operator)"
    )]
    Name { name: String, why: &'static str },
    #[error(
        "the lease namespace '{namespace}' is not a valid namespace: {why} (pass --lease-namespace, e.g. gamedeploy)"
    )]
    Namespace {
        namespace: String,
        why: &'static str,
    },
    #[error(
        "the lease namespace is empty: pass --lease-namespace NAMESPACE (or leave the flag out to use POD_NAMESPACE or the kubeconfig's namespace)"
    )]
    NoNamespace,
}

/// Why `s` is not a DNS-1123 label (a namespace), if it is not.
pub fn dns_label_error(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("it is empty");
    }
    if s.len() > 63 {
        return Some("it is longer than 63 characters");
    }
    let b = s.as_bytes();
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    {
        return Some("use only lower-case letters, digits and '-'");
    }
    if !(b[0].is_ascii_alphanumeric() && b[b.len() - 1].is_ascii_alphanumeric()) {
        return Some("it must start and end with a letter or a digit");
    }
    None
}

/// Why `s` is not a DNS-1123 subdomain (most objects' names), if it is not.
pub fn dns_subdomain_error(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("it is empty");
    }
    if s.len() > 253 {
        return Some("it is longer than 253 characters");
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.'))
    {
        return Some("use only lower-case letters, digits, '-' and '.'");
    }
    if !s.split('.').all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphanumeric() && b[b.len() - 1].is_ascii_alphanumeric()
    }) {
        return Some("it and each '.'-separated part must start and end with a letter or a digit");
    }
    None
}

/// `leaseTransitions` after a look at the lease: one more when it changes hands. A stored
/// value that is negative (never written by a client-go elector) counts as 0, and the count
/// stops at `i32::MAX` instead of wrapping negative, which the API server would refuse on
/// every takeover (and with it, every leader).
fn next_transitions(stored: Option<i32>, changes_hands: bool) -> i32 {
    stored
        .unwrap_or(0)
        .max(0)
        .saturating_add(i32::from(changes_hands))
}

impl LeaseSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.duration.as_secs() == 0 || self.duration.as_secs() > i32::MAX as u64 {
            return Err(SettingsError::Duration);
        }
        if self.renew.is_zero() || self.renew >= self.duration {
            return Err(SettingsError::RenewTooSlow {
                renew: self.renew.as_secs(),
                duration: self.duration.as_secs(),
            });
        }
        if self.identity.is_empty() {
            return Err(SettingsError::NoIdentity);
        }
        if let Some(why) = dns_subdomain_error(&self.name) {
            return Err(SettingsError::Name {
                name: self.name.clone(),
                why,
            });
        }
        // Empty: the caller fills in the client's default namespace once connected, and
        // validates again ([`LeaseSettings::validate_namespace`]).
        if !self.namespace.is_empty() {
            self.validate_namespace()?;
        }
        Ok(())
    }

    /// The namespace is set and could exist.
    pub fn validate_namespace(&self) -> Result<(), SettingsError> {
        if self.namespace.is_empty() {
            return Err(SettingsError::NoNamespace);
        }
        match dns_label_error(&self.namespace) {
            Some(why) => Err(SettingsError::Namespace {
                namespace: self.namespace.clone(),
                why,
            }),
            None => Ok(()),
        }
    }

    /// How long the holder keeps leading without a successful renewal: one renewal interval
    /// short of the lease's end, a margin for clocks running at different rates.
    fn renew_deadline(&self) -> Duration {
        self.duration.saturating_sub(self.renew)
    }
}

/// What one look at the lease found.
enum Holder {
    /// Ours now (taken or renewed).
    Ours,
    /// Someone else's until then.
    HeldBy { holder: String, until: Timestamp },
}

struct Elector {
    api: Api<Lease>,
    clock: SharedClock,
    settings: LeaseSettings,
}

impl Elector {
    /// Takes the lease if it is free, expired or ours (renewing it then).
    async fn try_acquire_or_renew(&self) -> Result<Holder, kube::Error> {
        let now = self.clock.now();
        let s = &self.settings;
        let duration = s.duration.as_secs() as i32;
        let Some(mut lease) = self.api.get_opt(&s.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(s.name.clone()),
                    namespace: Some(s.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(s.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            // Two candidates creating at once: one gets AlreadyExists and looks again.
            self.api.create(&PostParams::default(), &lease).await?;
            return Ok(Holder::Ours);
        };
        let spec = lease.spec.take().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let ours = holder.as_deref() == Some(s.identity.as_str());
        if let Some(holder) = holder.filter(|_| !ours) {
            let until = spec.renew_time.as_ref().and_then(|t| {
                let secs = i64::from(spec.lease_duration_seconds.unwrap_or(0));
                t.0.checked_add(SignedDuration::from_secs(secs)).ok()
            });
            if let Some(until) = until.filter(|u| *u > now) {
                return Ok(Holder::HeldBy { holder, until });
            }
        }
        let transitions = next_transitions(spec.lease_transitions, !ours);
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(s.identity.clone()),
            lease_duration_seconds: Some(duration),
            acquire_time: if ours {
                spec.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..spec
        });
        // The update carries the resourceVersion read above: a lease someone else took or
        // renewed meanwhile is a 409, not a second leader.
        self.api
            .replace(&s.name, &PostParams::default(), &lease)
            .await?;
        Ok(Holder::Ours)
    }

    /// Waits until the lease is ours; returns when it was taken (by the clock, before the
    /// request, so the renewal deadline errs early).
    async fn campaign(&self, metrics: &Metrics) -> Timestamp {
        let mut last_holder: Option<String> = None;
        loop {
            let started = self.clock.now();
            let wait = match self.try_acquire_or_renew().await {
                Ok(Holder::Ours) => return started,
                Ok(Holder::HeldBy { holder, until }) => {
                    if last_holder.as_ref() != Some(&holder) {
                        tracing::info!(%holder, "standing by: the leader lease is held by {holder}");
                        last_holder = Some(holder.clone());
                    }
                    metrics.set_role(Role::Standby {
                        holder: Some(holder),
                    });
                    let left = until.duration_since(self.clock.now());
                    Duration::try_from(left).unwrap_or_default().min(RETRY)
                }
                Err(e) => {
                    tracing::warn!(
                        "cannot take the leader lease {}/{}: {}; retrying",
                        self.settings.namespace,
                        self.settings.name,
                        crate::describe(&e)
                    );
                    metrics.set_role(Role::Standby { holder: None });
                    RETRY
                }
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Renews the lease until it is lost; returns why.
    async fn hold(&self, acquired: Timestamp) -> String {
        let deadline = self.settings.renew_deadline();
        let mut last = acquired;
        let mut wait = self.settings.renew;
        loop {
            tokio::time::sleep(wait).await;
            let since = self.clock.now().duration_since(last);
            let left =
                Duration::try_from(SignedDuration::try_from(deadline).unwrap_or_default() - since)
                    .unwrap_or_default();
            if left.is_zero() {
                return format!("it could not be renewed for {}s", deadline.as_secs());
            }
            let started = self.clock.now();
            match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                Err(_) => return format!("it could not be renewed for {}s", deadline.as_secs()),
                Ok(Ok(Holder::Ours)) => {
                    last = started;
                    wait = self.settings.renew;
                }
                Ok(Ok(Holder::HeldBy { holder, .. })) => return format!("{holder} holds it now"),
                Ok(Err(e)) => {
                    tracing::warn!(
                        "cannot renew the leader lease: {}; retrying",
                        crate::describe(&e)
                    );
                    wait = RETRY.min(self.settings.renew);
                }
            }
        }
    }

    /// Gives the lease up if it is ours, so a standby takes it at its next look instead of
    /// waiting for it to expire.
    async fn release(&self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            return Ok(false);
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(false);
        };
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(false);
        }
        spec.holder_identity = None;
        self.api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await?;
        Ok(true)
    }
}

/// How a term as leader ended.
enum End {
    Lost(String),
    Shutdown,
    ControllerStopped,
}

/// Runs the operator under leader election until `shutdown` resolves: stands by until the
/// lease is ours, runs the controller while it stays ours, and stands by again if it is lost.
/// On shutdown, in-flight reconciles get `grace` to finish, then the lease is released.
pub async fn run(
    client: kube::Client,
    clock: SharedClock,
    settings: LeaseSettings,
    options: Options,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let shutdown = shutdown.boxed().shared();
    let metrics = options.metrics.clone();
    let gate = options.gate.clone();
    gate.close();
    let elector = Elector {
        api: Api::namespaced(client.clone(), &settings.namespace),
        clock: clock.clone(),
        settings,
    };
    let identity = elector.settings.identity.clone();
    metrics.set_role(Role::Standby { holder: None });
    loop {
        let acquired = tokio::select! {
            biased;
            () = shutdown.clone() => return,
            at = elector.campaign(&metrics) => at,
        };
        tracing::info!(%identity, "took the leader lease; reconciling");
        gate.open();
        metrics.set_role(Role::Active {
            leader: true,
            synced: false,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let term = controller::run(client.clone(), clock.clone(), options.clone(), async {
            let _ = stopped.await;
        });
        let mut term = std::pin::pin!(term);
        let end = tokio::select! {
            biased;
            why = elector.hold(acquired) => End::Lost(why),
            () = shutdown.clone() => End::Shutdown,
            _ = &mut term => End::ControllerStopped,
        };
        match end {
            End::Lost(why) => {
                // First the gate: whatever the controller was doing sends nothing more.
                gate.close();
                metrics.set_role(Role::Standby { holder: None });
                tracing::warn!("lost the leader lease ({why}); stopped reconciling");
                continue;
            }
            End::Shutdown => {
                let _ = stop.send(());
                if tokio::time::timeout(grace, &mut term).await.is_err() {
                    tracing::warn!(
                        "in-flight reconciles did not finish within {}ms of the signal; stopping anyway",
                        grace.as_millis()
                    );
                }
            }
            End::ControllerStopped => {}
        }
        gate.close();
        metrics.set_role(Role::Standby { holder: None });
        match elector.release().await {
            Ok(true) => tracing::info!("released the leader lease"),
            Ok(false) => {}
            Err(e) => tracing::warn!(
                "could not release the leader lease: {}; a standby takes it when it expires",
                crate::describe(&e)
            ),
        }
        return;
    }
}

/// An operator under leader election on its own task (tests and simulations): `shutdown`
/// lets in-flight reconciles finish and releases the lease; `kill` leaves it to expire.
pub type Handle = crate::handle::Handle<()>;

impl Handle {
    pub fn start(
        client: kube::Client,
        clock: SharedClock,
        settings: LeaseSettings,
        options: Options,
    ) -> Self {
        Self::spawn(|stopped| {
            run(
                client,
                clock,
                settings,
                options,
                Duration::from_millis(500),
                stopped,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn settings(duration: u64, renew: u64) -> LeaseSettings {
        LeaseSettings {
            name: "gamedeploy-operator".into(),
            namespace: "gamedeploy-system".into(),
            identity: "pod-a".into(),
            duration: Duration::from_secs(duration),
            renew: Duration::from_secs(renew),
        }
    }

    #[test]
    fn the_leader_steps_down_a_renewal_before_the_lease_ends() {
        assert_eq!(settings(15, 5).renew_deadline(), Duration::from_secs(10));
        assert!(settings(15, 5).validate().is_ok());
        let e = settings(5, 5).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "the lease renewal interval (5s) must be shorter than the lease duration (5s), or the leader would lose the lease between two renewals"
        );
    }

    #[test]
    fn lease_names_and_namespaces_that_cannot_exist_are_refused_with_the_flag_to_fix() {
        let mut bad = settings(15, 5);
        bad.name = "Gamedeploy_Operator".into();
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "the lease name 'Gamedeploy_Operator' is not a valid object name: use only lower-case letters, digits, '-' and '.' (pass --lease-name, e.g. gamedeploy-operator)"
        );
        bad.name = "-x".into();
        assert!(bad.validate().is_err());
        let mut bad = settings(15, 5);
        bad.namespace = "game.ns".into();
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "the lease namespace 'game.ns' is not a valid namespace: use only lower-case letters, digits and '-' (pass --lease-namespace, e.g. gamedeploy)"
        );
        bad.namespace = String::new();
        assert!(bad.validate().is_ok(), "filled in from the client later");
        assert_eq!(
            bad.validate_namespace().unwrap_err().to_string(),
            "the lease namespace is empty: pass --lease-namespace NAMESPACE (or leave the flag out to use POD_NAMESPACE or the kubeconfig's namespace)"
        );
    }

    #[test]
    fn lease_transitions_saturate_and_a_negative_count_restarts_from_zero() {
        assert_eq!(next_transitions(None, true), 1);
        assert_eq!(next_transitions(Some(4), false), 4);
        assert_eq!(next_transitions(Some(i32::MAX), true), i32::MAX);
        assert_eq!(next_transitions(Some(i32::MAX), false), i32::MAX);
        assert_eq!(next_transitions(Some(-5), true), 1);
        assert_eq!(next_transitions(Some(i32::MIN), false), 0);
    }

    /// A lease whose holder expired with `leaseTransitions` at 2^31-1 is taken over, and the
    /// count stays there (it wrapped negative, and every takeover failed).
    #[tokio::test(start_paused = true)]
    async fn an_expired_lease_at_the_largest_transition_count_is_taken_over() {
        let clock: SharedClock = Arc::new(gamedeploy_clock::TokioClock::starting_at(
            "2026-01-01T00:10:00Z".parse().unwrap(),
        ));
        let server = embedded_apiserver::ApiServer::new(clock.clone());
        let api: Api<Lease> = Api::namespaced(server.client(), "default");
        let lease: Lease = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "gamedeploy-operator", "namespace": "default"},
            "spec": {"holderIdentity": "pod-old", "leaseDurationSeconds": 15,
                     "renewTime": "2026-01-01T00:00:00.000000Z",
                     "leaseTransitions": i32::MAX}
        }))
        .unwrap();
        api.create(&PostParams::default(), &lease).await.unwrap();
        let elector = Elector {
            api: api.clone(),
            clock,
            settings: settings(15, 5),
        };
        assert!(matches!(
            elector.try_acquire_or_renew().await.unwrap(),
            Holder::Ours
        ));
        let spec = api.get("gamedeploy-operator").await.unwrap().spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("pod-a"));
        assert_eq!(spec.lease_transitions, Some(i32::MAX));
    }
}
