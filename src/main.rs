//! The `gamedeploy` command line: a thin edge over the workspace's crates (see README's layout).
//! With the default `embedded` feature it also carries the embedded cluster and the simulator
//! (`cluster`, `simulate`, in `embedded.rs`); without it, only the operator.

/// mimalloc, not glibc's malloc: the operator and the embedded cluster free and allocate
/// millions of small JSON nodes, which glibc's bins served slowly once the heap was
/// fragmented, and whose freed pages it kept (BENCHMARKS.md has both runs). `gamedeploy run`
/// sets it for memory before it starts: `allocator.rs`.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "mimalloc")]
mod allocator;

#[cfg(feature = "embedded")]
mod embedded;
mod inspect;
mod rollout;
mod run_args;

use std::io::Write;
#[cfg(feature = "embedded")]
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use futures::FutureExt;
use gamedeploy_core::inplace::table;

#[derive(Parser)]
#[command(
    name = "gamedeploy",
    version,
    about = "GameDeployment operator with crash-safe in-place updates"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every CustomResourceDefinition (GameDeployment, HookTemplate, HookRun) as YAML.
    Crds,
    /// Print the in-place update state machine: states, transitions, forcible edges.
    States {
        #[arg(long, value_enum, default_value_t = StatesFormat::Markdown)]
        format: StatesFormat,
    },
    #[cfg(feature = "embedded")]
    /// Run a scenario on the embedded cluster (API server, simulated kubelet, the real
    /// operator) on virtual time. Exit status: 0 settled, 1 timed out, 2 invalid scenario.
    Simulate {
        /// The scenario file (see fixtures/scenarios/).
        scenario: PathBuf,
        /// `table`: kubectl-style snapshots as the run goes; `json`: the full report at the end.
        #[arg(short, long, value_enum, default_value_t = SimOutput::Table)]
        output: SimOutput,
        /// Chaos runs: run the scenario once per seed in this range (`1..1000`), each with
        /// seeded API faults (409, 500, latency, dropped watches) and an operator crash after a
        /// seeded write, check every invariant, and print a summary. Exit status 1 if any run
        /// breaks an invariant or does not settle.
        #[arg(long, value_name = "A..B")]
        fault_seeds: Option<String>,
        /// Chaos runs at once (default: one per CPU).
        #[arg(long, requires = "fault_seeds")]
        jobs: Option<usize>,
    },
    #[cfg(feature = "embedded")]
    /// Serve the embedded cluster (API server) over HTTPS on loopback and write a kubeconfig
    /// for it (trusting the CA made at start), so kubectl, client libraries and `gamedeploy
    /// run` can connect as to a real cluster.
    Cluster {
        /// Address to listen on; keep it on loopback.
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: std::net::SocketAddr,
        /// Where to write the kubeconfig.
        #[arg(long, default_value = "gamedeploy-embedded.kubeconfig")]
        kubeconfig_out: PathBuf,
        /// Also run the operator inside the same process.
        #[arg(long)]
        operator: bool,
        /// Also run a simulated kubelet node, so pods start and become ready.
        #[arg(long)]
        kubelet: bool,
        /// With --operator: serve the operator's /metrics, /healthz and /readyz here.
        #[arg(long)]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Serve plain HTTP instead of HTTPS (for debugging with curl or a packet capture).
        #[arg(long)]
        insecure_http: bool,
        /// With --kubelet: the simulated kubelet's settings, as a scenario file's `kubelet:`
        /// block (startSeconds, readySeconds, images with per-image delays and failures,
        /// nodes with their cpu, memory and pods, binding, resizeSeconds).
        #[arg(long, requires = "kubelet", value_name = "FILE")]
        kubelet_config: Option<PathBuf>,
        /// With --kubelet: how many simulated nodes (sim-node, sim-node-2, ...); overrides
        /// `nodes.count` of --kubelet-config.
        #[arg(long, requires = "kubelet", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        nodes: Option<u32>,
        /// With --kubelet: each node's allocatable cpu, a quantity ("4", "3500m"); overrides
        /// `nodes.cpu` of --kubelet-config (default 1k).
        #[arg(long, requires = "kubelet", value_name = "QUANTITY")]
        node_cpu: Option<String>,
        /// With --kubelet: each node's allocatable memory, a quantity ("8Gi"); overrides
        /// `nodes.memory` of --kubelet-config (default 4Ti).
        #[arg(long, requires = "kubelet", value_name = "QUANTITY")]
        node_memory: Option<String>,
    },
    /// A GameDeployment's rollout at a glance: revisions, strategy, counts, problems, and
    /// where each pod's in-place update stands.
    /// Exit status 1 when the rollout failed (its progress deadline exceeded, a FailedUpdate
    /// condition, a failed canary hook step) or --timeout passed.
    Status {
        /// The GameDeployment.
        name: String,
        #[command(flatten)]
        target: inspect::Target,
        /// Redraw on every change until the rollout completes (exit 0) or fails (exit 1), or
        /// Ctrl-C.
        #[arg(short, long)]
        watch: bool,
        /// With --watch: give up (exit 1) after this long, e.g. 90s, 5m, 1h; 0 waits for ever.
        #[arg(long, requires = "watch", value_parser = parse_timeout)]
        timeout: Option<Duration>,
    },
    /// Pause the rollout: set spec.updateStrategy.paused (pods being updated finish).
    Pause {
        name: String,
        #[command(flatten)]
        target: inspect::Target,
    },
    /// Resume a paused rollout (also continues a canary pause step without duration).
    Resume {
        name: String,
        #[command(flatten)]
        target: inspect::Target,
    },
    /// Finish the current canary step now; with --full, all of them.
    Promote {
        name: String,
        /// Skip every remaining step: the rollout goes on to every pod.
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        target: inspect::Target,
    },
    /// Roll back to the previous template (or --to-revision N) from the ControllerRevisions.
    Undo {
        name: String,
        /// The revision to roll back to (see `history`); 0 is the previous one.
        #[arg(long, default_value_t = 0)]
        to_revision: i64,
        #[command(flatten)]
        target: inspect::Target,
    },
    /// The template revisions, with change cause, images, resources and pods on each.
    History {
        name: String,
        /// Show this revision's pod template.
        #[arg(long, default_value_t = 0)]
        revision: i64,
        #[command(flatten)]
        target: inspect::Target,
    },
    /// Change the template: `set image NAME CONTAINER=IMAGE...`.
    #[command(subcommand)]
    Set(SetCommand),
    /// Force a pod's in-place update into STATE (see `gamedeploy states`), if the operator
    /// would accept it from the pod's current state; says what the operator will do next.
    Force {
        /// The pod.
        pod: String,
        /// The state to force: Pending, Unready, ImagePatched, Ready or Abandoned.
        state: String,
        #[command(flatten)]
        target: inspect::Target,
    },
    /// Run the operator against a cluster found through the usual kube config (KUBECONFIG,
    /// ~/.kube/config, or the in-cluster service account), with leader election on a Lease.
    /// Stops cleanly on SIGTERM or Ctrl-C, releasing the lease.
    Run(run_args::RunArgs),
}

#[derive(Subcommand)]
enum SetCommand {
    /// Set container images: CONTAINER=IMAGE (`*=IMAGE` for every container).
    Image {
        name: String,
        #[arg(required = true, value_name = "CONTAINER=IMAGE")]
        images: Vec<String>,
        #[command(flatten)]
        target: inspect::Target,
    },
}

/// kubectl's `--timeout` values: `90s`, `5m`, `1h30m` (or `0`).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let d: jiff::SignedDuration = text
        .parse()
        .map_err(|_| format!("'{text}' is not a duration: use e.g. 90s, 5m, 1h30m, or 0"))?;
    Duration::try_from(d).map_err(|_| format!("'{text}' is negative"))
}

/// The name kubectl runs a plugin by: `kubectl gamedeploy ...` runs `kubectl-gamedeploy ...`.
const PLUGIN_NAME: &str = "kubectl-gamedeploy";

/// Whether the binary was started as the kubectl plugin (a link or copy named
/// `kubectl-gamedeploy`); then its help says `kubectl gamedeploy`.
fn as_plugin(argv0: Option<&std::ffi::OsStr>) -> bool {
    argv0
        .and_then(|a| std::path::Path::new(a).file_stem())
        .is_some_and(|stem| stem == PLUGIN_NAME)
}

/// The command line, named as it was called, and whether as the kubectl plugin.
fn parse_cli() -> (Cli, bool) {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = Cli::command();
    let plugin = as_plugin(args.first().map(|a| a.as_os_str()));
    if plugin {
        command = command.bin_name("kubectl gamedeploy");
    }
    let matches = command.get_matches_from(args);
    (
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()),
        plugin,
    )
}

#[cfg(test)]
mod plugin_tests {
    use super::*;

    #[test]
    fn the_binary_is_the_plugin_when_called_kubectl_gamedeploy() {
        let called = |a: &str| as_plugin(Some(std::ffi::OsStr::new(a)));
        assert!(called("kubectl-gamedeploy"));
        assert!(called("/home/me/bin/kubectl-gamedeploy"));
        assert!(called("kubectl-gamedeploy.exe"));
        assert!(!called("gamedeploy"));
        assert!(!called("/usr/bin/kubectl-gamedeploy-old"));
        assert!(!as_plugin(None));
        // Same subcommands either way.
        let cli =
            Cli::try_parse_from(["kubectl-gamedeploy", "status", "x", "-w", "--timeout", "5m"]);
        assert!(matches!(
            cli.map(|c| c.command),
            Ok(Command::Status { watch: true, timeout: Some(t), .. }) if t == Duration::from_secs(300)
        ));
    }

    #[test]
    fn timeouts_read_as_kubectl_writes_them() {
        assert_eq!(parse_timeout("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_timeout("0"), Ok(Duration::ZERO));
        assert_eq!(
            parse_timeout("soon"),
            Err("'soon' is not a duration: use e.g. 90s, 5m, 1h30m, or 0".into())
        );
        assert_eq!(parse_timeout("-5s"), Err("'-5s' is negative".into()));
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SimOutput {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum StatesFormat {
    /// States and transitions as Markdown tables.
    Markdown,
    /// A Mermaid stateDiagram.
    Mermaid,
    /// The transition table as data (states/transitions.yaml).
    Yaml,
}

fn main() -> ExitCode {
    let (cli, plugin) = parse_cli();
    // On glibc, `allocator`'s constructor has set them before anything allocated.
    #[cfg(all(
        feature = "mimalloc",
        not(all(target_os = "linux", target_env = "gnu"))
    ))]
    if matches!(cli.command, Command::Run(_)) {
        allocator::lean();
    }
    #[cfg(feature = "embedded")]
    if let Command::Simulate {
        scenario,
        output,
        fault_seeds,
        jobs,
    } = &cli.command
    {
        // A simulation is quiet unless asked: its tables and report are the output.
        if std::env::var_os("RUST_LOG").is_some() {
            init_tracing_as(run_args::LogFormat::Text);
        }
        return match fault_seeds {
            Some(seeds) => embedded::chaos(scenario, seeds, *jobs, *output),
            None => embedded::simulate(scenario, *output),
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gamedeploy: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // As a kubectl plugin, errors read as kubectl's do (`error: ...`).
    let code = runtime.block_on(async_main(cli, if plugin { "error" } else { "gamedeploy" }));
    // A hook measurement still being judged on the blocking pool (its deadline passed, the
    // thread cannot be interrupted) must not hold the exit: dropping the runtime would wait.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    code
}

async fn async_main(cli: Cli, error_prefix: &str) -> ExitCode {
    let output = match cli.command {
        Command::Crds => gamedeploy_core::api::crds_yaml().map_err(|e| e.to_string()),
        Command::States { format } => states(format),
        Command::Status {
            name,
            target,
            watch,
            timeout,
        } => inspect::status(&target, &name, watch, timeout)
            .await
            .map_err(|e| e.to_string()),
        Command::Force { pod, state, target } => inspect::force(&target, &pod, &state)
            .await
            .map_err(|e| e.to_string()),
        Command::Pause { name, target } => rollout::set_paused(&target, &name, true)
            .await
            .map_err(|e| e.to_string()),
        Command::Resume { name, target } => rollout::set_paused(&target, &name, false)
            .await
            .map_err(|e| e.to_string()),
        Command::Promote { name, full, target } => rollout::promote(&target, &name, full)
            .await
            .map_err(|e| e.to_string()),
        Command::Undo {
            name,
            to_revision,
            target,
        } => rollout::undo(&target, &name, Some(to_revision))
            .await
            .map_err(|e| e.to_string()),
        Command::History {
            name,
            revision,
            target,
        } => rollout::show_history(&target, &name, Some(revision))
            .await
            .map_err(|e| e.to_string()),
        Command::Set(SetCommand::Image {
            name,
            images,
            target,
        }) => rollout::set_image(&target, &name, &images)
            .await
            .map_err(|e| e.to_string()),
        Command::Run(args) => run(args).await,
        #[cfg(feature = "embedded")]
        Command::Simulate { .. } => Err("simulate runs on its own runtime".into()),
        #[cfg(feature = "embedded")]
        Command::Cluster {
            listen,
            kubeconfig_out,
            operator,
            kubelet,
            metrics_addr,
            insecure_http,
            kubelet_config,
            nodes,
            node_cpu,
            node_memory,
        } => {
            let served = embedded::Served {
                listen,
                kubeconfig_out,
                insecure_http,
            };
            let kubelet = kubelet.then_some(embedded::Kubelet {
                config: kubelet_config,
                nodes,
                cpu: node_cpu,
                memory: node_memory,
            });
            embedded::cluster(served, operator, kubelet, metrics_addr).await
        }
    };
    match output {
        Ok(text) => {
            // A closed pipe (`gamedeploy crds | head`) is not an error worth a message.
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{error_prefix}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn states(format: StatesFormat) -> Result<String, String> {
    let t = table::table().map_err(|e| e.to_string())?;
    Ok(match format {
        StatesFormat::Markdown => {
            let mut out = String::from("| state | persisted | meaning |\n|---|---|---|\n");
            for s in &t.states {
                out.push_str(&format!(
                    "| {} | {} | {} |\n",
                    s.name,
                    if s.persisted { "yes" } else { "derived" },
                    s.meaning
                ));
            }
            out.push('\n');
            out.push_str(&t.markdown());
            out
        }
        StatesFormat::Mermaid => t.mermaid(),
        StatesFormat::Yaml => table::SOURCE.to_string(),
    })
}

#[cfg(feature = "embedded")]
pub(crate) fn init_tracing() {
    init_tracing_as(run_args::LogFormat::Text);
}

/// Logs to stderr, as text for people or as JSON lines for a log pipeline.
pub(crate) fn init_tracing_as(format: run_args::LogFormat) {
    // kube's HTTP layer logs every failed request at ERROR without saying where to, and
    // a dropped watch at WARN as a `Debug` dump; `run` and the operator say what failed
    // themselves, once per attempt.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        "info,kube_client::client=error,kube_client::client::builder=off".into()
    });
    let logs = match format {
        run_args::LogFormat::Text => gamedeploy_operator::logs::text(filter, std::io::stderr),
        run_args::LogFormat::Json => gamedeploy_operator::logs::json(filter, std::io::stderr),
    };
    tracing_subscriber::util::SubscriberInitExt::init(logs);
}

/// After SIGTERM, in-flight reconciles get this long to finish before the process exits
/// anyway: every step of an update is recorded before it is taken, so one cut short resumes
/// on the next start, while a reconcile stuck on an unreachable server could hold the stop
/// for minutes.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
/// Longest wait between two attempts to reach the cluster at startup.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_secs(30);

async fn run(args: run_args::RunArgs) -> Result<String, String> {
    init_tracing_as(args.log_format);
    // Installed before any await, so SIGTERM stops the operator whatever it is waiting for.
    let shutdown = shutdown_signal();
    let instance = std::env::var("HOSTNAME").unwrap_or_else(|_| "gamedeploy".into());
    let lease = if args.no_leader_election {
        None
    } else {
        Some(args.lease(&instance).map_err(|e| e.to_string())?)
    };
    // Served from the start: /healthz answers while the cluster is still being reached.
    let metrics = Arc::new(gamedeploy_operator::metrics::Metrics::new());
    let listener = gamedeploy_operator::serve::bind(args.metrics_addr)
        .await
        .map_err(|e| e.to_string())?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    }
    tokio::spawn(gamedeploy_operator::serve::serve(
        listener,
        metrics.clone(),
        shutdown.clone(),
    ));
    let client = tokio::select! {
        client = connect(args.kubeconfig.as_deref()) => client?,
        () = shutdown.clone() => {
            tracing::info!("gamedeploy operator stopped before it reached the cluster");
            return Ok(String::new());
        }
    };
    let seed = jiff::Timestamp::now().as_nanosecond() as u64;
    tracing::info!(%instance, namespace = args.namespace.as_deref().unwrap_or("(all)"), "gamedeploy operator starting");
    let options = gamedeploy_operator::controller::Options {
        seed,
        instance,
        concurrency: args.concurrency,
        namespace: args.namespace,
        metrics: metrics.clone(),
        ..Default::default()
    };
    let clock: gamedeploy_clock::SharedClock = Arc::new(gamedeploy_clock::SystemClock);
    if let Some(mut lease) = lease {
        if lease.namespace.is_empty() {
            lease.namespace = client.default_namespace().to_string();
            lease.validate_namespace().map_err(|e| e.to_string())?;
        }
        tracing::info!(lease = %format!("{}/{}", lease.namespace, lease.name), "leader election on");
        gamedeploy_operator::leader::run(client, clock, lease, options, SHUTDOWN_GRACE, shutdown)
            .await;
        tracing::info!("gamedeploy operator stopped");
        return Ok(String::new());
    }
    metrics.set_role(gamedeploy_operator::metrics::Role::Active {
        leader: false,
        synced: false,
    });
    let operator = gamedeploy_operator::controller::run(client, clock, options, shutdown.clone());
    // The controller's graceful shutdown waits for its caches' first lists and for every
    // in-flight reconcile, which against a lost server may be for ever.
    tokio::select! {
        _ = operator => {}
        () = async { shutdown.await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!(
                "in-flight reconciles did not finish within {}ms of the signal; stopping anyway",
                SHUTDOWN_GRACE.as_millis()
            );
        }
    }
    tracing::info!("gamedeploy operator stopped");
    Ok(String::new())
}

/// Why `run` cannot use the cluster yet; each is retried with back-off.
#[derive(Debug, thiserror::Error)]
enum Unusable {
    #[error("cannot reach the cluster at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "cannot reach the cluster's GameDeployment API at {url}: {reason} (is this a Kubernetes API server, with the CRDs installed? `gamedeploy crds | kubectl apply -f -`)"
    )]
    NoApi { url: String, reason: String },
    #[error(
        "the cluster at {url} refuses the operator's requests: {reason} (grant the rights in deploy/operator/rbac.yaml to the account in the kubeconfig)"
    )]
    Refused { url: String, reason: String },
}

impl Unusable {
    fn of(url: &str, e: &kube::Error) -> Self {
        let (url, reason) = (url.to_string(), gamedeploy_operator::describe(e));
        match e {
            kube::Error::Api(s) if s.code == 404 => Unusable::NoApi { url, reason },
            kube::Error::Api(s) if s.code == 401 || s.code == 403 => {
                Unusable::Refused { url, reason }
            }
            _ => Unusable::Unreachable { url, reason },
        }
    }
}

/// A client for the configured cluster, once it answers a list of GameDeployments: before
/// that, the controller's watches would retry silently for ever. One line per failed attempt.
async fn connect(kubeconfig: Option<&std::path::Path>) -> Result<kube::Client, String> {
    use gamedeploy_core::api::StoredGameDeployment;
    let config = inspect::config(kubeconfig, None)
        .await
        .map_err(|e| e.to_string())?;
    let url = config.cluster_url.to_string();
    let client =
        kube::Client::try_from(config).map_err(|e| format!("cannot build a client: {e}"))?;
    // Read leniently: the metadata of one GameDeployment with deep managedFields would fail a
    // typed (or metadata-only) read, and this check would never pass.
    let api: kube::Api<StoredGameDeployment> = kube::Api::all(client.clone());
    let mut wait = Duration::from_secs(1);
    loop {
        match api.list(&kube::api::ListParams::default().limit(1)).await {
            Ok(_) => return Ok(client),
            Err(e) => tracing::warn!(
                "{}; retrying in {}s",
                Unusable::of(url.trim_end_matches('/'), &e),
                wait.as_secs()
            ),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_CONNECT_BACKOFF);
    }
}

/// Resolves on SIGTERM (what Kubernetes sends) or Ctrl-C. The handlers are installed when this
/// is called, not when it is first polled, so a signal that comes while the caller is busy
/// elsewhere is neither lost nor fatal. Clones resolve together.
pub(crate) fn shutdown_signal() -> futures::future::Shared<futures::future::BoxFuture<'static, ()>>
{
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            return async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            .boxed()
            .shared();
        }
    }
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
    .boxed()
    .shared()
}
