//! `gamedeploy status` and `gamedeploy force`: the IO edge of inspecting and steering a rollout
//! on any cluster. Fetching, watching and patching happen here; what the screen shows is
//! `gamedeploy_inspect::status`, and which force is legal is `gamedeploy_core::inplace::force`,
//! the operator's own judgement.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use futures::{FutureExt, StreamExt, stream};
use gamedeploy_core::api::{HookRun, StoredGameDeployment};
use gamedeploy_core::inplace::{ForceRefused, PodView, force};
use gamedeploy_core::names;
use gamedeploy_core::planner::adopt::Selector;
use gamedeploy_inspect::status::{Observed, render};
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
}

impl InspectError {
    fn api(what: impl Into<String>, e: &kube::Error) -> Self {
        InspectError::Api {
            what: what.into(),
            reason: gamedeploy_operator::describe(e),
        }
    }
}

/// A client for `--kubeconfig`, or for the usual lookup (KUBECONFIG, ~/.kube/config,
/// in-cluster). Unlike `run`, one attempt: a person is waiting for an answer.
async fn client(kubeconfig: Option<&Path>) -> Result<Client, InspectError> {
    Client::try_from(config(kubeconfig).await?).map_err(|e| InspectError::Client(e.to_string()))
}

/// The cluster's client configuration: `kubeconfig` if given, else the usual lookup
/// (`KUBECONFIG`, `~/.kube/config`, in-cluster). `gamedeploy run` connects through it too.
pub(crate) async fn config(kubeconfig: Option<&Path>) -> Result<kube::Config, InspectError> {
    match kubeconfig {
        Some(path) => {
            let unreadable = |e: &dyn std::fmt::Display| InspectError::Kubeconfig {
                path: path.display().to_string(),
                reason: e.to_string(),
            };
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| unreadable(&e))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| unreadable(&e))
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| InspectError::NoCluster(e.to_string())),
    }
}

/// Where the objects are: `-n`, else the kubeconfig context's namespace.
fn namespace_of(client: &Client, namespace: Option<String>) -> String {
    namespace.unwrap_or_else(|| client.default_namespace().to_string())
}

/// The terminal's width from `COLUMNS` (shells export it), else 80.
fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w| *w >= 20)
        .unwrap_or(80)
}

/// `gamedeploy status`: once, or redrawn on every change until Ctrl-C with `watch`.
pub(crate) async fn status(
    kubeconfig: Option<&Path>,
    namespace: Option<String>,
    name: &str,
    watch: bool,
) -> Result<String, InspectError> {
    let client = client(kubeconfig).await?;
    let ns = namespace_of(&client, namespace);
    let first = observe(&client, &ns, name).await?;
    if !watch {
        return Ok(render(&first.0, jiff::Timestamp::now(), width()));
    }
    watch_status(client, ns, name, first).await
}

/// The GameDeployment, its pods and the namespace's HookRuns, with the pods' label selector.
async fn observe(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<(Observed, String), InspectError> {
    let gds: Api<StoredGameDeployment> = Api::namespaced(client.clone(), ns);
    let gd = gds
        .get_opt(name)
        .await
        .map_err(|e| InspectError::api(format!("cannot read GameDeployment {ns}/{name}"), &e))?
        .ok_or_else(|| InspectError::NotFound {
            kind: "GameDeployment",
            namespace: ns.to_string(),
            name: name.to_string(),
        })?;
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
        Observed {
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

/// Redraws whenever the GameDeployment or one of its pods changes, and every second on a
/// terminal so the times move; stops on Ctrl-C (or SIGTERM).
async fn watch_status(
    client: Client,
    ns: String,
    name: &str,
    first: (Observed, String),
) -> Result<String, InspectError> {
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
    let mut shown = String::new();
    let mut draw = |observed: &Observed| {
        let text = render(observed, jiff::Timestamp::now(), width());
        if text != shown {
            let mut out = std::io::stdout().lock();
            // Clear the screen on a terminal; elsewhere (a pipe, a log) frames follow each other.
            let _ = if tty {
                write!(out, "\x1b[H\x1b[2J{text}")
            } else {
                writeln!(out, "{text}")
            };
            let _ = out.flush();
            shown = text;
        }
    };
    draw(&observed);
    loop {
        tokio::select! {
            () = stop.clone() => return Ok(String::new()),
            next = triggers.next() => {
                if next.is_none() {
                    return Ok(String::new());
                }
                // A burst of changes (one rollout step touches several objects) is one redraw.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while triggers.next().now_or_never().flatten().is_some() {}
                draw(&observe(&client, &ns, name).await?.0);
            }
        }
    }
}

/// `gamedeploy force`: judges the request as the operator will, then sets the annotation.
pub(crate) async fn force(
    kubeconfig: Option<&Path>,
    namespace: Option<String>,
    pod: &str,
    state: &str,
) -> Result<String, InspectError> {
    let client = client(kubeconfig).await?;
    let ns = namespace_of(&client, namespace);
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let found = pods
        .get_opt(pod)
        .await
        .map_err(|e| InspectError::api(format!("cannot read pod {ns}/{pod}"), &e))?
        .ok_or_else(|| InspectError::NotFound {
            kind: "pod",
            namespace: ns.clone(),
            name: pod.to_string(),
        })?;
    let view = PodView::from_pod(&found);
    let forced = force::validate(&view, state, jiff::Timestamp::now()).map_err(|refusal| {
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
