//! `gamedeploy status` and `gamedeploy force`: the IO edge of inspecting and steering a rollout
//! on any cluster. Fetching, watching and patching happen here; what the screen shows is
//! `gamedeploy_inspect::status`, and which force is legal is
//! `gamedeploy_core::inplace::check_force`, the operator's own judgement.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{FutureExt, StreamExt, stream};
use gamedeploy_core::api::{HookRun, StoredGameDeployment};
use gamedeploy_core::inplace::{ForceRefused, PodView, check_force, decode};
use gamedeploy_core::names;
use gamedeploy_core::planner::rules::adoption::Selector;
use gamedeploy_inspect::rollout::{PromoteRefused, Unrestorable, Verdict, verdict};
use gamedeploy_inspect::status::{RolloutSnapshot, render};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, Client};

/// Why `status` or `force` stopped, in words that say what to fix.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InspectError {
    #[error("cannot read kubeconfig {path}: {reason}")]
    Kubeconfig { path: String, reason: String },
    #[error("no cluster found ({0}); set KUBECONFIG or pass --kubeconfig")]
    NoCluster(String),
    #[error("cannot build a client: {0}")]
    Client(String),
    #[error("{kind} {namespace}/{name} not found (pass -n NAMESPACE if it is elsewhere)")]
    NotFound {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("{what}: {reason}")]
    Api { what: String, reason: String },
    #[error("refused to force pod {namespace}/{pod}: {refusal}")]
    Refused {
        namespace: String,
        pod: String,
        refusal: ForceRefused,
    },
    #[error(
        "pod {namespace}/{pod} changed while its force was being checked; run the command again"
    )]
    Changed { namespace: String, pod: String },
    #[error("'{name}' is not a valid {kind} name: {why}; nothing was sent")]
    InvalidName {
        kind: &'static str,
        name: String,
        why: &'static str,
    },
    #[error(
        "refused to force pod {namespace}/{pod}: {why}, so no operator would act on the forced state; nothing was changed"
    )]
    NotManaged {
        namespace: String,
        pod: String,
        why: String,
    },
    #[error("{0}")]
    RolloutFailed(String),
    /// kubectl's `rollout pause`/`resume` refusal when there is nothing to do (exit 1).
    #[error("gamedeployments.tkex.tencent.com \"{name}\" {why}")]
    NothingToDo { name: String, why: &'static str },
    #[error(
        "you cannot rollback a paused gamedeployment; resume it first with 'kubectl gamedeploy resume {name}' and try again"
    )]
    UndoPaused { name: String },
    #[error(
        "timed out after {after} waiting for the rollout of gamedeployment \"{name}\" (last seen: {last})"
    )]
    TimedOut {
        name: String,
        after: String,
        last: String,
    },
    #[error("{0}")]
    Unrestorable(#[from] Unrestorable),
    #[error("{0}")]
    PromoteRefused(#[from] PromoteRefused),
    #[error(
        "gamedeployment {namespace}/{name} has a spec that does not decode ({reason}); fix it with kubectl edit first"
    )]
    Undecodable {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error(
        "unable to find container named \"{container}\" in gamedeployment \"{name}\" (it has: {known})"
    )]
    UnknownContainer {
        name: String,
        container: String,
        known: String,
    },
    #[error(
        "'{0}' is not CONTAINER=IMAGE (e.g. python=python:3.10, or *=IMAGE for every container)"
    )]
    NotAnImagePair(String),
    #[error("cannot show the template as YAML: {0}")]
    Yaml(String),
}

/// Which cluster, context and namespace a command works on: kubectl's `-n`, `--kubeconfig`
/// and `--context`.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct Target {
    /// The namespace (default: the kubeconfig context's).
    #[arg(short, long)]
    pub(crate) namespace: Option<String>,
    /// Use this kubeconfig file instead of the usual lookup (KUBECONFIG, ~/.kube/config).
    #[arg(long)]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long)]
    pub(crate) context: Option<String>,
}

impl Target {
    /// A client and the namespace to work in, the names checked before anything is sent.
    pub(crate) async fn connect(
        &self,
        kind: &'static str,
        name: &str,
    ) -> Result<(Client, String), InspectError> {
        object_name(kind, name)?;
        if let Some(ns) = &self.namespace {
            namespace_name(ns)?;
        }
        let config = config(self.kubeconfig.as_deref(), self.context.as_deref()).await?;
        let client = Client::try_from(config).map_err(|e| InspectError::Client(e.to_string()))?;
        let ns = namespace_of(&client, self.namespace.clone())?;
        Ok((client, ns))
    }
}

/// `name` as an object's name (a DNS-1123 subdomain, as pods and GameDeployments are named),
/// before it is pasted into a request's path: `ins?watch=true` would otherwise ask for `ins`
/// with a query of its own.
pub(crate) fn object_name(kind: &'static str, name: &str) -> Result<(), InspectError> {
    match gamedeploy_operator::leader::dns_subdomain_error(name) {
        Some(why) => Err(InspectError::InvalidName {
            kind,
            name: name.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

/// `namespace` as a namespace's name (a DNS-1123 label).
pub(crate) fn namespace_name(namespace: &str) -> Result<(), InspectError> {
    match gamedeploy_operator::leader::dns_label_error(namespace) {
        Some(why) => Err(InspectError::InvalidName {
            kind: "namespace",
            name: namespace.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

/// Why a kubeconfig could not be used, naming each file once and without Rust's quoting
/// (kube's own message is `failed to read kubeconfig from '"/path"': ...`).
fn kubeconfig_reason(e: &kube::config::KubeconfigError) -> String {
    use kube::config::{KubeconfigError as K, LoadDataError as L};
    let io = |e: &std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => "there is no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    let file = |what: &str, e: &std::io::Error, path: &Path| {
        format!("cannot read its {what} {}: {}", path.display(), io(e))
    };
    match e {
        K::ReadConfig(e, _) => io(e),
        K::LoadCertificateAuthority(L::ReadFile(e, path)) => file("certificate authority", e, path),
        K::LoadClientCertificate(L::ReadFile(e, path)) => file("client certificate", e, path),
        K::LoadClientKey(L::ReadFile(e, path)) => file("client key", e, path),
        other => gamedeploy_operator::describe(other),
    }
}

impl InspectError {
    pub(crate) fn api(what: impl Into<String>, e: &kube::Error) -> Self {
        InspectError::Api {
            what: what.into(),
            reason: gamedeploy_operator::describe(e),
        }
    }
}

/// The cluster's client configuration: `kubeconfig` if given, else the usual lookup
/// (`KUBECONFIG`, `~/.kube/config`, in-cluster), at `context` if given (else the current one).
/// `gamedeploy run` connects through it too. Unlike `run`, the commands make one attempt: a
/// person is waiting for an answer.
pub(crate) async fn config(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Config, InspectError> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    match kubeconfig {
        // A context names an entry of a kubeconfig: the in-cluster account has none.
        None if context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| InspectError::NoCluster(kubeconfig_reason(&e))),
        Some(path) => {
            let unreadable = |e: &kube::config::KubeconfigError| InspectError::Kubeconfig {
                path: path.display().to_string(),
                reason: kubeconfig_reason(e),
            };
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| unreadable(&e))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| unreadable(&e))
        }
        None => kube::Config::infer().await.map_err(|e| {
            use std::error::Error;
            // Of the two sources tried, the kubeconfig's failure is the one a person can fix.
            match e
                .source()
                .and_then(|s| s.downcast_ref::<kube::config::KubeconfigError>())
            {
                Some(kube::config::KubeconfigError::ReadConfig(_, path)) => {
                    InspectError::Kubeconfig {
                        path: path.display().to_string(),
                        reason: e
                            .source()
                            .and_then(|s| s.downcast_ref())
                            .map(kubeconfig_reason)
                            .unwrap_or_default(),
                    }
                }
                Some(k) => InspectError::NoCluster(kubeconfig_reason(k)),
                None => InspectError::NoCluster(gamedeploy_operator::describe(&e)),
            }
        }),
    }
}

/// Where the objects are: `-n`, else the kubeconfig context's namespace.
pub(crate) fn namespace_of(
    client: &Client,
    namespace: Option<String>,
) -> Result<String, InspectError> {
    let ns = namespace.unwrap_or_else(|| client.default_namespace().to_string());
    namespace_name(&ns)?;
    Ok(ns)
}

/// The terminal's width from `COLUMNS` (shells export it), else 80.
fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w| *w >= 20)
        .unwrap_or(80)
}

/// `gamedeploy status`: the screen and where the rollout stands, once; with `watch`, redrawn
/// until the rollout completes (`Ok`), fails or `timeout` passes (an error: exit status 1), as
/// `kubectl rollout status` waits. Once, a failed rollout is an error too.
pub(crate) async fn status(
    target: &Target,
    name: &str,
    watch: bool,
    timeout: Option<Duration>,
) -> Result<String, InspectError> {
    let (client, ns) = target.connect("GameDeployment", name).await?;
    let first = observe(&client, &ns, name).await?;
    if !watch {
        let screen = render(&first.0, jiff::Timestamp::now(), width());
        return match verdict(&first.0) {
            Verdict::Failed(cause) => {
                print!("{screen}");
                Err(InspectError::RolloutFailed(cause))
            }
            v => Ok(format!("{screen}\n{}", v.wrapped(width()))),
        };
    }
    // Zero waits for ever, as kubectl's `--timeout=0`.
    watch_status(client, ns, name, first, timeout.filter(|t| !t.is_zero())).await
}

/// The GameDeployment `name` through `api` (in `ns`), or why it cannot be read.
pub(crate) async fn game_deployment(
    api: &Api<StoredGameDeployment>,
    ns: &str,
    name: &str,
) -> Result<StoredGameDeployment, InspectError> {
    api.get_opt(name)
        .await
        .map_err(|e| InspectError::api(format!("cannot read GameDeployment {ns}/{name}"), &e))?
        .ok_or_else(|| InspectError::NotFound {
            kind: "GameDeployment",
            namespace: ns.to_string(),
            name: name.to_string(),
        })
}

/// The GameDeployment, its pods and the namespace's HookRuns, with the pods' label selector.
async fn observe(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<(RolloutSnapshot, String), InspectError> {
    let gd = game_deployment(&Api::namespaced(client.clone(), ns), ns, name).await?;
    let selector = selector(&gd);
    let pods = match &selector {
        // A spec that does not decode and has no status yet names no pods.
        None => Vec::new(),
        Some(selector) => {
            Api::<Pod>::namespaced(client.clone(), ns)
                .list(&ListParams::default().labels(selector))
                .await
                .map_err(|e| InspectError::api(format!("cannot list the pods of {ns}/{name}"), &e))?
                .items
        }
    };
    let hook_runs = Api::<HookRun>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| InspectError::api(format!("cannot list the HookRuns of {ns}"), &e))?
        .items
        .into_iter()
        .filter_map(|h| {
            let phase = h.status.as_ref().and_then(|s| s.phase);
            Some((h.metadata.name?, phase))
        })
        .collect::<BTreeMap<_, _>>();
    Ok((
        RolloutSnapshot {
            gd,
            pods,
            hook_runs,
        },
        selector.unwrap_or_default(),
    ))
}

/// The pods' label selector: the spec's, else what the status last reported.
fn selector(gd: &StoredGameDeployment) -> Option<String> {
    gd.decoded()
        .and_then(|d| Selector::new(&d.spec.selector).ok().map(|s| s.to_query()))
        .or_else(|| gd.status().map(|s| s.label_selector.clone()))
        .filter(|s| !s.is_empty())
}

/// How `status --watch` shows each observation: on a terminal the whole screen redrawn in
/// place with where the rollout stands under it; elsewhere (a pipe, a CI log) the screen once,
/// then one line each time where the rollout stands changes.
struct Drawing {
    tty: bool,
    screen: String,
    line: String,
}

impl Drawing {
    /// Shows `observed` if anything changed; returns where the rollout stands.
    fn draw(&mut self, observed: &RolloutSnapshot) -> Verdict {
        let v = verdict(observed);
        let screen = render(observed, jiff::Timestamp::now(), width());
        let mut out = std::io::stdout().lock();
        // A failure is said once, on stderr, as the command's error.
        let line = match &v {
            Verdict::Failed(_) => "",
            v => v.line(),
        };
        if self.tty {
            let text = match &v {
                Verdict::Failed(_) => screen,
                v => format!("{screen}\n{}", v.wrapped(width())),
            };
            if text != self.screen {
                let _ = write!(out, "\x1b[H\x1b[2J{text}");
                self.screen = text;
            }
        } else {
            if self.screen.is_empty() {
                let _ = writeln!(out, "{screen}");
                self.screen = screen;
            }
            if !line.is_empty() && line != self.line {
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = out.flush();
        self.line = v.line().to_string();
        v
    }
}

/// Redraws whenever the GameDeployment or one of its pods changes, and every second on a
/// terminal so the times move, until the rollout completes or fails, `timeout` passes, or
/// Ctrl-C (or SIGTERM) stops it.
async fn watch_status(
    client: Client,
    ns: String,
    name: &str,
    first: (RolloutSnapshot, String),
    timeout: Option<Duration>,
) -> Result<String, InspectError> {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let tty = std::io::stdout().is_terminal();
    let (observed, selector) = first;
    let gds: Api<StoredGameDeployment> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let gd_changes = watcher(
        gds,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .map(|_| ());
    let pod_changes = watcher(pods, watcher::Config::default().labels(&selector)).map(|_| ());
    let ticks = stream::unfold((), move |()| async move {
        if tty {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some(((), ()))
        } else {
            futures::future::pending().await
        }
    });
    let mut triggers = stream::select(stream::select(gd_changes, pod_changes), ticks).boxed();
    let stop = crate::shutdown_signal();
    let timed_out = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => futures::future::pending().await,
        }
    };
    tokio::pin!(timed_out);
    let mut drawing = Drawing {
        tty,
        screen: String::new(),
        line: String::new(),
    };
    let mut observed = observed;
    loop {
        match drawing.draw(&observed) {
            Verdict::Complete(_) => return Ok(String::new()),
            Verdict::Failed(cause) => return Err(InspectError::RolloutFailed(cause)),
            Verdict::Waiting(_) => {}
        }
        tokio::select! {
            () = stop.clone() => return Ok(String::new()),
            () = &mut timed_out => {
                return Err(InspectError::TimedOut {
                    name: name.to_string(),
                    after: timeout
                        .map(|t| jiff::SignedDuration::try_from(t).unwrap_or_default())
                        .map(|t| format!("{t:#}"))
                        .unwrap_or_default(),
                    last: drawing.line.clone(),
                });
            }
            next = triggers.next() => {
                if next.is_none() {
                    return Ok(String::new());
                }
                // A burst of changes (one rollout step touches several objects) is one redraw.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while triggers.next().now_or_never().flatten().is_some() {}
                observed = observe(&client, &ns, name).await?.0;
            }
        }
    }
}

/// `gamedeploy force`: judges the request as the operator will, then sets the annotation.
pub(crate) async fn force(target: &Target, pod: &str, state: &str) -> Result<String, InspectError> {
    let (client, ns) = target.connect("pod", pod).await?;
    force_with(client, &ns, pod, state).await
}

/// Whether a GameDeployment that exists controls `pod`: only then does an operator act on a
/// forced state. The reason it does not, otherwise.
async fn managed(client: &Client, ns: &str, pod: &Pod) -> Result<(), InspectError> {
    let not_managed = |why: String| InspectError::NotManaged {
        namespace: ns.to_string(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        why,
    };
    let owners = pod.metadata.owner_references.as_deref().unwrap_or_default();
    let Some(owner) = owners.iter().find(|o| o.controller == Some(true)) else {
        return Err(not_managed(
            "no GameDeployment owns it (it has no controller ownerReference)".into(),
        ));
    };
    let group = owner.api_version.split_once('/').map_or("", |(g, _)| g);
    if owner.kind != "GameDeployment" || group != names::GROUP {
        return Err(not_managed(format!(
            "it is controlled by {} {} ({}), not by a GameDeployment",
            owner.kind, owner.name, owner.api_version
        )));
    }
    let gds: Api<StoredGameDeployment> = Api::namespaced(client.clone(), ns);
    // A whole, lenient read: a metadata-only read decodes `managedFields`, which can nest past
    // what a typed read follows (see `Lenient`).
    let gd = gds.get_opt(&owner.name).await.map_err(|e| {
        InspectError::api(
            format!("cannot read GameDeployment {ns}/{}", owner.name),
            &e,
        )
    })?;
    match gd {
        Some(gd) if kube::Resource::meta(&gd).uid.as_deref() == Some(owner.uid.as_str()) => Ok(()),
        Some(_) => Err(not_managed(format!(
            "its GameDeployment {} was deleted (one of that name exists again, with another uid)",
            owner.name
        ))),
        None => Err(not_managed(format!(
            "its GameDeployment {} no longer exists",
            owner.name
        ))),
    }
}

/// `force` once connected and the names checked.
async fn force_with(
    client: Client,
    ns: &str,
    pod: &str,
    state: &str,
) -> Result<String, InspectError> {
    let ns = ns.to_string();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let found = pods
        .get_opt(pod)
        .await
        .map_err(|e| InspectError::api(format!("cannot read pod {ns}/{pod}"), &e))?
        .ok_or_else(|| InspectError::NotFound {
            kind: "pod",
            namespace: ns.clone(),
            name: pod.to_string(),
        })?;
    managed(&client, &ns, &found).await?;
    let view = PodView::from_pod(&found);
    let decoded = decode(&view.annotations);
    let forced =
        check_force(&view, &decoded, state, jiff::Timestamp::now()).map_err(|refusal| {
            InspectError::Refused {
                namespace: ns.clone(),
                pod: pod.to_string(),
                refusal,
            }
        })?;
    let pending = view.annotations.get(names::ANNOTATION_FORCE).cloned();
    // The resourceVersion makes the write conditional: the pod is forced from the state just
    // checked, or not at all.
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": view.resource_version,
            "annotations": {names::ANNOTATION_FORCE: forced.to.to_string()},
        }
    });
    match pods
        .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            return Err(InspectError::Changed {
                namespace: ns,
                pod: pod.to_string(),
            });
        }
        Err(e) => {
            return Err(InspectError::api(
                format!("cannot annotate pod {ns}/{pod}"),
                &e,
            ));
        }
    }
    let mut out = format!(
        "pod {ns}/{pod}: {} -> {} requested ({}={}).\n",
        forced.from,
        forced.to,
        names::ANNOTATION_FORCE,
        forced.to
    );
    if let Some(previous) = pending.filter(|p| p.trim() != forced.to.to_string()) {
        out.push_str(&format!(
            "It replaces a request for {previous} the operator had not acted on yet.\n"
        ));
    }
    out.push_str(&forced.consequence());
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::PostParams;
    use serde_json::json;

    #[test]
    fn names_that_are_not_object_names_are_refused_before_any_request() {
        let e = object_name("GameDeployment", "ins?watch=true").unwrap_err();
        assert_eq!(
            e.to_string(),
            "'ins?watch=true' is not a valid GameDeployment name: use only lower-case letters, digits, '-' and '.'; nothing was sent"
        );
        let e = object_name("pod", "POD?dryRun=All").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("'POD?dryRun=All' is not a valid pod name")
        );
        assert!(object_name("pod", "../x").is_err());
        assert!(object_name("pod", "").is_err());
        assert!(object_name("pod", &"a".repeat(254)).is_err());
        assert!(object_name("pod", &"a".repeat(253)).is_ok());
        assert!(object_name("pod", "test-gamedeployment-7x9q.1").is_ok());
        assert_eq!(
            namespace_name("a.b").unwrap_err().to_string(),
            "'a.b' is not a valid namespace name: use only lower-case letters, digits and '-'; nothing was sent"
        );
        assert!(namespace_name("default?x=1").is_err());
        assert!(namespace_name(&"a".repeat(64)).is_err());
        assert!(namespace_name("tenant-a").is_ok());
    }

    #[test]
    fn an_unreadable_kubeconfig_names_its_path_once_without_quotes() {
        let e = kube::config::KubeconfigError::ReadConfig(
            std::io::Error::from(std::io::ErrorKind::NotFound),
            "/nonexistent/kc".into(),
        );
        assert_eq!(kubeconfig_reason(&e), "there is no such file");
        let e = InspectError::Kubeconfig {
            path: "/nonexistent/kc".into(),
            reason: kubeconfig_reason(&e),
        };
        assert_eq!(
            e.to_string(),
            "cannot read kubeconfig /nonexistent/kc: there is no such file"
        );
    }

    /// `--context` picks a kubeconfig's context, as kubectl's does; an unknown one is named.
    #[tokio::test]
    async fn context_picks_the_kubeconfigs_context() {
        let dir = std::env::temp_dir().join(format!("gamedeploy-context-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n\
             - {name: a, cluster: {server: 'http://127.0.0.1:1'}}\n\
             - {name: b, cluster: {server: 'http://127.0.0.1:2'}}\n\
             users: [{name: u, user: {}}]\ncontexts:\n\
             - {name: a, context: {cluster: a, user: u}}\n\
             - {name: b, context: {cluster: b, user: u, namespace: games}}\n",
        )
        .unwrap();
        let current = config(Some(&path), None).await.unwrap();
        assert_eq!(current.cluster_url.to_string(), "http://127.0.0.1:1/");
        let other = config(Some(&path), Some("b")).await.unwrap();
        assert_eq!(other.cluster_url.to_string(), "http://127.0.0.1:2/");
        assert_eq!(other.default_namespace, "games");
        let e = config(Some(&path), Some("c"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("failed to load current context: c"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `force` on the embedded cluster: a pod no GameDeployment controls (no owner, another
    /// kind) is refused and left alone; a pod of a live one is judged as the operator would.
    #[tokio::test]
    async fn force_refuses_a_pod_no_game_deployment_manages() {
        let clock: gamedeploy_clock::SharedClock = std::sync::Arc::new(
            gamedeploy_clock::TokioClock::starting_at("2026-01-01T00:00:00Z".parse().unwrap()),
        );
        let server = embedded_apiserver::ApiServer::new(clock);
        let client = server.client_as("gamedeploy-force");
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in gamedeploy_core::api::crds() {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
        let gd: gamedeploy_core::api::GameDeployment =
            serde_saphyr::from_str(include_str!("../deploy/examples/inplace-update.yaml")).unwrap();
        let gd = Api::<gamedeploy_core::api::GameDeployment>::namespaced(client.clone(), "default")
            .create(&PostParams::default(), &gd)
            .await
            .unwrap();
        let gd_uid = gd.metadata.uid.clone().unwrap();
        let gd_name = gd.metadata.name.clone().unwrap();
        // An owner of another kind that exists (the cluster's garbage collector deletes pods
        // whose owner does not, so a gone GameDeployment is a moment's state).
        let cm: k8s_openapi::api::core::v1::ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": "web-1"}})).unwrap();
        let cm_uid =
            Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), "default")
                .create(&PostParams::default(), &cm)
                .await
                .unwrap()
                .metadata
                .uid
                .unwrap();
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let owner = |api_version: &str, kind: &str, name: &str, uid: &str| {
            json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
                    "controller": true}])
        };
        let cases = [
            ("lonely", json!(null), "no GameDeployment owns it"),
            (
                "configured",
                owner("v1", "ConfigMap", "web-1", &cm_uid),
                "it is controlled by ConfigMap web-1 (v1), not by a GameDeployment",
            ),
            (
                "managed",
                owner(
                    "tkex.tencent.com/v1alpha1",
                    "GameDeployment",
                    &gd_name,
                    &gd_uid,
                ),
                "",
            ),
        ];
        for (name, owners, _) in &cases {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name, "ownerReferences": owners},
                "spec": {"containers": [{"name": "c", "image": "i"}]}
            }))
            .unwrap();
            pods.create(&PostParams::default(), &pod).await.unwrap();
        }
        for (name, _, refusal) in cases {
            let result = force_with(client.clone(), "default", name, "ImagePatched").await;
            if refusal.is_empty() {
                assert!(
                    !matches!(result, Err(InspectError::NotManaged { .. })),
                    "{name}: {result:?}"
                );
                continue;
            }
            let Err(e @ InspectError::NotManaged { .. }) = result else {
                panic!("{name}: {result:?}");
            };
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("refused to force pod default/{name}: "))
                    && text.contains(refusal)
                    && text.ends_with(
                        "so no operator would act on the forced state; nothing was changed"
                    ),
                "{text}"
            );
            let annotations = pods.get(name).await.unwrap().metadata.annotations;
            assert!(
                annotations.is_none_or(|a| !a.contains_key(names::ANNOTATION_FORCE)),
                "{name} was not annotated"
            );
        }
    }
}
