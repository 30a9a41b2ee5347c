//! The flags of `gamedeploy run`, and what they turn into: the controller's options, the
//! lease, the metrics address, the log format.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use gamedeploy_operator::leader::{LeaseSettings, SettingsError};

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Use this kubeconfig file instead of the usual lookup.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// GameDeployments reconciled at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Watch and reconcile only this namespace (default: all namespaces).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Log lines as `text` or as `json` (one object a line); the level comes from RUST_LOG.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Serve /metrics, /healthz and /readyz on this address.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Run without leader election: for a single replica, or development.
    #[arg(long)]
    pub no_leader_election: bool,
    /// Namespace of the leader Lease (default: the pod's, from POD_NAMESPACE, else the
    /// kubeconfig context's namespace).
    #[arg(long)]
    pub lease_namespace: Option<String>,
    /// Name of the leader Lease.
    #[arg(long, default_value = "gamedeploy-operator")]
    pub lease_name: String,
    /// How long the lease lasts after its last renewal: how long a crashed leader's
    /// GameDeployments wait for a standby.
    #[arg(long, default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// How often the leader renews the lease (shorter than the duration).
    #[arg(long, default_value_t = 5)]
    pub lease_renew_seconds: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

impl RunArgs {
    /// The lease settings, with `identity` (the pod's name) as the holder. The namespace is
    /// `--lease-namespace`, else `POD_NAMESPACE`; empty when neither says, for the caller to
    /// fill with the client's default namespace once connected (in a pod: its service account's
    /// namespace; elsewhere: the kubeconfig context's, else `default`). An explicitly empty
    /// `--lease-namespace ""` is refused: it names no namespace, and guessing one would leave
    /// the operator standing by for a lease it may not be allowed to take.
    pub fn lease(&self, identity: &str) -> Result<LeaseSettings, SettingsError> {
        if self.lease_namespace.as_deref() == Some("") {
            return Err(SettingsError::NoNamespace);
        }
        let namespace = self.lease_namespace.clone().unwrap_or_else(|| {
            std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|ns| !ns.is_empty())
                .unwrap_or_default()
        });
        let settings = LeaseSettings {
            name: self.lease_name.clone(),
            namespace,
            identity: identity.to_string(),
            duration: Duration::from_secs(self.lease_duration_seconds),
            renew: Duration::from_secs(self.lease_renew_seconds),
        };
        settings.validate()?;
        Ok(settings)
    }
}
