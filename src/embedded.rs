//! The subcommands that run the embedded cluster: `cluster` (served over HTTP for kubectl) and
//! `simulate` (a scenario on virtual time). Left out of the operator-only build.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::{SimOutput, init_tracing, shutdown_signal};

/// Where and how `cluster` serves the API.
pub(crate) struct Served {
    pub(crate) listen: std::net::SocketAddr,
    /// Where the kubeconfig for it is written.
    pub(crate) kubeconfig_out: PathBuf,
    /// Plain HTTP instead of HTTPS.
    pub(crate) insecure_http: bool,
}

/// The simulated kubelet node of `cluster`.
pub(crate) struct Kubelet {
    /// `--kubelet-config`: a file with a scenario's `kubelet:` block; the defaults without.
    pub(crate) config: Option<PathBuf>,
    /// `--nodes`: how many nodes, over the file's `nodes.count`.
    pub(crate) nodes: Option<u32>,
    /// `--node-cpu`, `--node-memory`: each node's allocatable, over the file's.
    pub(crate) cpu: Option<String>,
    pub(crate) memory: Option<String>,
}

impl Kubelet {
    /// The file's settings with the node flags applied over them.
    fn config(&self) -> Result<simulated_kubelet::config::KubeletConfig, String> {
        let mut config = match self.config.as_deref() {
            Some(file) => gamedeploy_simulator::scenario::load_kubelet(file)
                .map_err(|e| format!("--kubelet-config: {e}"))?,
            None => simulated_kubelet::config::KubeletConfig::default(),
        };
        let sizes = [
            self.nodes.is_some(),
            self.cpu.is_some(),
            self.memory.is_some(),
        ];
        if sizes.contains(&true) && !config.node_pools.is_empty() {
            return Err("--nodes, --node-cpu and --node-memory size one pool of nodes; the --kubelet-config file has nodePools: drop one of them".into());
        }
        let quantity = k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        if let Some(n) = self.nodes {
            config.nodes.count = n;
        }
        if let Some(cpu) = &self.cpu {
            config.nodes.cpu = quantity(cpu.clone());
        }
        if let Some(memory) = &self.memory {
            config.nodes.memory = quantity(memory.clone());
        }
        config.validate().map_err(|e| match e.path.as_str() {
            "nodes.cpu" => format!("--node-cpu: {}", e.problem),
            "nodes.memory" => format!("--node-memory: {}", e.problem),
            _ => format!("--kubelet-config: {}: {}", e.path, e.problem),
        })?;
        Ok(config)
    }
}

pub(crate) async fn cluster(
    served: Served,
    operator: bool,
    kubelet: Option<Kubelet>,
    metrics_addr: Option<std::net::SocketAddr>,
) -> Result<String, String> {
    use embedded_apiserver::{ApiServer, serve};
    let Served {
        listen,
        kubeconfig_out,
        insecure_http,
    } = served;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    init_tracing();
    // Read before anything is served: a wrong file stops the command with the file's error.
    let kubelet_config = match kubelet.as_ref() {
        Some(k) => k.config()?,
        None => simulated_kubelet::config::KubeletConfig::default(),
    };
    if !listen.ip().is_loopback() {
        return Err(format!(
            "--listen {listen}: the embedded cluster has no authentication; use a loopback address"
        ));
    }
    let clock: gamedeploy_clock::SharedClock = Arc::new(gamedeploy_clock::SystemClock);
    let server = ApiServer::new(clock.clone());
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(server.client_as("setup"));
    for crd in gamedeploy_core::api::crds() {
        crds.create(&Default::default(), &crd)
            .await
            .map_err(|e| format!("installing CRDs: {}", gamedeploy_operator::describe(&e)))?;
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("--listen {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // HTTPS by default, as kube-apiserver serves: a CA made now, trusted by the kubeconfig.
    let tls = if insecure_http {
        None
    } else {
        Some(serve::Tls::generate(&[addr.ip()])?)
    };
    let (kubeconfig, scheme) = match &tls {
        Some(tls) => (serve::kubeconfig_tls(addr, tls), "https"),
        None => (serve::kubeconfig(addr), "http"),
    };
    write_whole(&kubeconfig_out, &kubeconfig)
        .map_err(|e| format!("cannot write {}: {e}", kubeconfig_out.display()))?;
    eprintln!("embedded cluster listening on {scheme}://{addr}");
    eprintln!("  export KUBECONFIG={}", kubeconfig_out.display());
    if metrics_addr.is_some() && !operator {
        return Err("--metrics-addr serves the operator's metrics: add --operator".into());
    }
    if operator {
        let metrics = Arc::new(gamedeploy_operator::metrics::Metrics::new());
        metrics.set_role(gamedeploy_operator::metrics::Role::Active {
            leader: false,
            synced: false,
        });
        if let Some(addr) = metrics_addr {
            let listener = gamedeploy_operator::serve::bind(addr)
                .await
                .map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            eprintln!("operator metrics on http://{addr}/metrics");
            tokio::spawn(gamedeploy_operator::serve::serve(
                listener,
                metrics.clone(),
                shutdown_signal(),
            ));
        }
        let options = gamedeploy_operator::controller::Options {
            seed: 1,
            instance: "embedded".into(),
            concurrency: 4,
            metrics,
            ..Default::default()
        };
        tokio::spawn(gamedeploy_operator::controller::run(
            server.client_as("operator"),
            clock.clone(),
            options,
            shutdown_signal(),
        ));
    }
    if kubelet.is_some() {
        let (_config, rx) = tokio::sync::watch::channel(kubelet_config);
        tokio::spawn(simulated_kubelet::node::run(
            server.client_as("kubelet"),
            simulated_kubelet::NodeConfig::default(),
            clock.clone(),
            rx,
            simulated_kubelet::NodeRuntime::default(),
            shutdown_signal(),
        ));
    }
    let opts = serve::ServeOptions {
        tls,
        ..Default::default()
    };
    serve::serve_with(server, listener, opts, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::new())
}

/// Writes `text` to `path` through a temporary file beside it and a rename, so whoever waits
/// for the kubeconfig to appear never reads half of it.
fn write_whole(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// `simulate --fault-seeds`: the scenario under every seed, summarised (see
/// `gamedeploy_simulator::chaos`). Progress goes to stderr when it is a terminal.
pub(crate) fn chaos(
    path: &std::path::Path,
    seeds: &str,
    jobs: Option<usize>,
    output: SimOutput,
) -> ExitCode {
    use gamedeploy_simulator::chaos::{SeedRun, parse_seeds, run_seeds};
    use gamedeploy_simulator::scenario::{ExitStatus, load};
    use std::io::IsTerminal;
    let invalid = |e: String| {
        eprintln!("gamedeploy: {e}");
        ExitCode::from(ExitStatus::InvalidScenario.exit_code())
    };
    let seeds = match parse_seeds(seeds) {
        Ok(s) => s,
        Err(e) => return invalid(e),
    };
    let scenario = match load(path) {
        Ok(s) => s,
        Err(e) => return invalid(e.to_string()),
    };
    let total = seeds.clone().count();
    let jobs = jobs
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let terminal = std::io::stderr().is_terminal();
    let shown = path.display().to_string();
    // A failed seed is printed as soon as it ends, so a long run is worth watching (and a
    // killed one still says what failed); the summary repeats it.
    let progress = |run: &SeedRun| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let failures = run.failures(&shown);
        if terminal {
            eprint!("\r{failures}{n}/{total} runs   ");
        } else {
            eprint!("{failures}");
            if n.is_multiple_of(100) || n == total {
                eprintln!("{n}/{total} runs");
            }
        }
    };
    let summary = match run_seeds(&scenario, seeds, jobs, &progress) {
        Ok(s) => s,
        Err(e) => return invalid(format!("{}: {e}", path.display())),
    };
    if terminal {
        eprintln!();
    }
    match output {
        SimOutput::Json => match serde_json::to_string_pretty(&summary) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("gamedeploy: cannot render the summary: {e}"),
        },
        SimOutput::Table => print!("{}", summary.render(&shown)),
    }
    ExitCode::from(ExitStatus::of_run(summary.ok()).exit_code())
}

/// Runs a scenario on a single-threaded runtime with paused time: timers jump straight to the
/// next deadline, so a run is fast and its virtual timeline reproducible.
pub(crate) fn simulate(path: &std::path::Path, output: SimOutput) -> ExitCode {
    use gamedeploy_simulator::progress::{Progress, Throttle};
    use gamedeploy_simulator::scenario::{ExitStatus, load};
    use std::io::IsTerminal;
    let scenario = match load(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gamedeploy: {e}");
            return ExitCode::from(ExitStatus::InvalidScenario.exit_code());
        }
    };
    for warning in scenario.warnings() {
        eprintln!("gamedeploy: warning: {}: {warning}", path.display());
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gamedeploy: cannot start the simulation runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut print = |snapshot: String| {
        if output == SimOutput::Table {
            println!("{snapshot}");
        }
    };
    // A long run shows how far it has got, on a terminal only: tests and pipes capture stderr.
    let terminal = std::io::stderr().is_terminal();
    let mut throttle = Throttle::new(std::time::Duration::from_secs(1), std::time::Instant::now());
    let mut shown = false;
    let mut progress = |p: Progress| {
        if terminal && throttle.due(std::time::Instant::now()) {
            eprint!("\r{}   ", p.line());
            shown = true;
        }
    };
    let run = gamedeploy_simulator::runner::run_with_progress(&scenario, &mut print, &mut progress);
    let result = runtime.block_on(run);
    if shown {
        eprintln!();
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gamedeploy: {}: {e}", path.display());
            return ExitCode::from(ExitStatus::InvalidScenario.exit_code());
        }
    };
    match output {
        SimOutput::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("gamedeploy: cannot render the report: {e}"),
        },
        SimOutput::Table => println!(
            "{} after {}s of virtual time; operator restarts: {}, faults injected: {}",
            if report.settled {
                "settled"
            } else {
                "NOT settled"
            },
            report.virtual_seconds,
            report.operator_restarts,
            report.faults_injected
        ),
    }
    ExitCode::from(ExitStatus::of_run(report.settled).exit_code())
}
