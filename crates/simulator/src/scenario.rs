//! Scenario files (format in `crates/simulator/README.md`): what the simulation applies, does and
//! waits for. Loading validates everything up front and names the file, the field path and
//! the problem, so a typo fails before any virtual time passes (exit status 2).
//!
//! The YAML is read into a generic tree and walked by hand rather than derived, because
//! serde's messages do not say *where* (`steps[2].at`), and that is what a user needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::podref::PodRefError;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use simulated_kubelet::{ImageConfig, KubeletConfig, NodesConfig};

/// A loaded, validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    /// The file it came from (paths in it are relative to its directory).
    pub file: PathBuf,
    pub kubelet: KubeletConfig,
    /// Objects applied at t=0, in order.
    pub apply: Vec<Manifest>,
    /// In non-decreasing `at` order.
    pub steps: Vec<Step>,
    pub faults: Option<Faults>,
    pub until: Until,
    /// Scripted answers to hook measurements (web and Prometheus).
    pub hooks: Vec<HookResponder>,
}

/// A scripted hook endpoint: a measurement of a URL matching `url` (`*` matches any run of
/// characters) gets these answers in turn, each URL counting on its own (so every pod's
/// endpoint goes through the list); the last answer repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct HookResponder {
    pub url: String,
    pub answers: Vec<HookAnswer>,
}

/// One scripted answer, given `times` times in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct HookAnswer {
    pub status: u16,
    pub body: String,
    pub times: u64,
    /// Virtual time before the answer arrives.
    pub delay: Option<Duration>,
}

impl Scenario {
    /// What is valid but surely not meant: steps after `until.timeout` never run. For the
    /// person running it (stderr), not part of the report.
    pub fn warnings(&self) -> Vec<String> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.at > self.until.timeout)
            .map(|(i, s)| {
                format!(
                    "steps[{i}] at {} comes after until.timeout {} and will never run",
                    format_duration(s.at),
                    format_duration(self.until.timeout)
                )
            })
            .collect()
    }
}

/// One object to apply, with where it came from for error messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// E.g. `apply[0] (../../deploy/examples/inplace-update.yaml, document 1)`.
    pub origin: String,
    pub object: Value,
}

impl Manifest {
    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }
}

/// Something that happens at a virtual time.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Virtual time since the start of the run.
    pub at: Duration,
    pub action: StepAction,
}

/// What a step does; exactly one per step.
#[derive(Debug, Clone, PartialEq)]
pub enum StepAction {
    Patch(PatchStep),
    /// Set (`Some`) or remove (`None`) an annotation, as `kubectl annotate` does.
    Annotate {
        target: StepObject,
        key: String,
        value: Option<String>,
    },
    Delete(StepObject),
    Scale {
        target: StepObject,
        replicas: i32,
    },
    Apply(Vec<Manifest>),
    /// Drop the operator with all its caches and start a fresh one.
    RestartOperator,
    /// Kill the operator right after its N-th write from now on (1-based), then start a fresh one.
    CrashOperatorAfterWrites(u32),
    /// Replace the kubelet's settings for these images.
    SetImage(BTreeMap<String, ImageConfig>),
}

impl StepAction {
    /// The namespace whose pods `${pods[N]}` indexes, and whether the step uses such references.
    pub fn pod_namespace(&self) -> Option<&str> {
        let (target, extra) = match self {
            StepAction::Patch(p) => (&p.target, Some(&p.patch)),
            StepAction::Annotate { target, .. }
            | StepAction::Delete(target)
            | StepAction::Scale { target, .. } => (target, None),
            _ => return None,
        };
        let mut mentions = super::podref::mentions_pods(&target.name);
        if let StepAction::Annotate { value: Some(v), .. } = self {
            mentions |= super::podref::mentions_pods(v);
        }
        if let Some(patch) = extra {
            let _ = super::podref::try_each_string(patch, &mut |s| {
                mentions |= super::podref::mentions_pods(s);
                Ok::<(), ()>(())
            });
        }
        mentions.then(|| target.namespace.as_deref().unwrap_or("default"))
    }

    /// This step with every `${pods[N]}` replaced by a name from `pods` (sorted by name).
    pub fn expand(&self, pods: &[String]) -> Result<StepAction, PodRefError> {
        let target = |t: &StepObject| -> Result<StepObject, PodRefError> {
            Ok(StepObject {
                name: super::podref::expand(&t.name, pods)?,
                ..t.clone()
            })
        };
        Ok(match self {
            StepAction::Patch(p) => StepAction::Patch(PatchStep {
                target: target(&p.target)?,
                r#type: p.r#type,
                patch: super::podref::expand_value(&p.patch, pods)?,
            }),
            StepAction::Annotate {
                target: t,
                key,
                value,
            } => StepAction::Annotate {
                target: target(t)?,
                key: key.clone(),
                value: value
                    .as_deref()
                    .map(|v| super::podref::expand(v, pods))
                    .transpose()?,
            },
            StepAction::Delete(t) => StepAction::Delete(target(t)?),
            StepAction::Scale {
                target: t,
                replicas,
            } => StepAction::Scale {
                target: target(t)?,
                replicas: *replicas,
            },
            other => other.clone(),
        })
    }
}

/// The object a step acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepObject {
    pub kind: String,
    pub name: String,
    /// `None`: the `default` namespace for namespaced kinds.
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchStep {
    pub target: StepObject,
    pub r#type: PatchType,
    pub patch: Value,
}

/// Patch content types, as `kubectl patch --type` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::EnumString)]
#[strum(serialize_all = "lowercase")]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
}

/// Seeded API fault injection for the operator's requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    pub seed: u64,
    /// Share of operator writes answered 409, in [0, 1].
    pub conflict_rate: f64,
    /// Share answered 500, in [0, 1].
    pub error_rate: f64,
    pub latency: Option<Duration>,
    pub drop_watch_every: Option<Duration>,
}

/// When the run ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Until {
    /// End as soon as everything has settled.
    pub settled: bool,
    pub timeout: Duration,
    /// Stop, as an error, once more pods than this exist: a schema-valid
    /// `replicas: 2147483647` would otherwise grow the cluster until memory runs out.
    pub max_pods: usize,
}

/// The default of `until.maxPods`: twice the largest fleet BENCHMARKS.md simulates.
pub const DEFAULT_MAX_PODS: usize = 20_000;
/// The largest `until.maxPods` a scenario may ask for.
pub const MAX_PODS_LIMIT: u64 = 200_000;

impl Default for Until {
    fn default() -> Self {
        Until {
            settled: true,
            timeout: Duration::from_secs(30 * 60),
            max_pods: DEFAULT_MAX_PODS,
        }
    }
}

/// A scenario that cannot be run, and why.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: cannot read the scenario: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not valid YAML ({position}): {problem}", file.display())]
    Yaml {
        file: PathBuf,
        position: String,
        problem: String,
    },
    #[error("{}: {path}: {problem}", file.display())]
    Invalid {
        file: PathBuf,
        path: String,
        problem: String,
    },
}

/// How a `gamedeploy simulate` run ended, and the exit status it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display)]
pub enum ExitStatus {
    /// Settled before the timeout: 0.
    Settled,
    /// `until.timeout` passed first: 1 (the report is still printed).
    TimedOut,
    /// The scenario could not be loaded: 2.
    InvalidScenario,
}

impl ExitStatus {
    pub fn of_run(settled: bool) -> Self {
        if settled {
            ExitStatus::Settled
        } else {
            ExitStatus::TimedOut
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            ExitStatus::Settled => 0,
            ExitStatus::TimedOut => 1,
            ExitStatus::InvalidScenario => 2,
        }
    }
}

/// Kinds served as custom resources: the API server refuses strategic merge patches for them.
const CUSTOM_KINDS: [&str; 3] = ["GameDeployment", "HookTemplate", "HookRun"];
const STEP_KINDS: [&str; 8] = [
    "patch",
    "annotate",
    "delete",
    "scale",
    "apply",
    "restartOperator",
    "crashOperatorAfterWrites",
    "setImage",
];
const DURATION_HINT: &str = "use e.g. 20s, 1m30s, 2h";

/// Reads and validates a scenario file.
pub fn load(file: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(file).map_err(|source| ScenarioError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    parse(&text, file)
}

/// Reads a file that holds what a scenario's `kubelet:` block holds (`startSeconds`,
/// `readySeconds`, `images`), validated as that block is: `gamedeploy cluster --kubelet-config`.
pub fn load_kubelet(file: &Path) -> Result<KubeletConfig, ScenarioError> {
    let text = std::fs::read_to_string(file).map_err(|source| ScenarioError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    parse_kubelet(&text, file)
}

/// [`load_kubelet`] on text; `file` names it in errors.
pub fn parse_kubelet(text: &str, file: &Path) -> Result<KubeletConfig, ScenarioError> {
    let root: Value = serde_saphyr::from_str(text).map_err(|e| ScenarioError::Yaml {
        file: file.to_path_buf(),
        position: yaml_position(&e),
        problem: yaml_problem(&e),
    })?;
    YamlWalker { file }.kubelet(&root)
}

/// Validates scenario text; `file` names it in errors and anchors relative `apply` paths.
pub fn parse(text: &str, file: &Path) -> Result<Scenario, ScenarioError> {
    let root: Value = serde_saphyr::from_str(text).map_err(|e| ScenarioError::Yaml {
        file: file.to_path_buf(),
        position: yaml_position(&e),
        problem: yaml_problem(&e),
    })?;
    let cx = YamlWalker { file };
    let top = cx.mapping(
        &root,
        "",
        &[
            "name", "kubelet", "apply", "steps", "faults", "until", "hooks",
        ],
    )?;
    let name = cx.string(cx.required(top, "", "name")?, "name")?;
    if name.trim().is_empty() {
        return Err(cx.err("name", "must not be empty"));
    }
    let kubelet = match top.get("kubelet") {
        Some(v) => cx.kubelet(v)?,
        None => KubeletConfig::default(),
    };
    let apply = match top.get("apply") {
        Some(v) => cx.manifests(v, "apply")?,
        None => Vec::new(),
    };
    let steps = match top.get("steps") {
        Some(v) => cx.steps(v)?,
        None => Vec::new(),
    };
    let faults = top.get("faults").map(|v| cx.faults(v)).transpose()?;
    let until = top.get("until").map(|v| cx.until(v)).transpose()?;
    let hooks = match top.get("hooks") {
        Some(v) => cx.hooks(v)?,
        None => Vec::new(),
    };
    Ok(Scenario {
        hooks,
        name,
        file: file.to_path_buf(),
        kubelet,
        apply,
        steps,
        faults,
        until: until.unwrap_or_default(),
    })
}

/// Parses a Go-style duration made of integer parts with units `h`, `m`, `s`, `ms`
/// (`20s`, `1m30s`, `2h`, `500ms`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "s" => Duration::from_secs(n),
            "ms" => Duration::from_millis(n),
            _ => return None,
        };
        total = total.checked_add(part)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// The inverse of [`parse_duration`], exact: `90s` prints as `1m30s`, `0` as `0s`.
pub fn format_duration(d: Duration) -> String {
    let (secs, ms) = (d.as_secs(), d.subsec_millis());
    let parts = [
        (secs / 3600, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
        (u64::from(ms), "ms"),
    ];
    let text: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() { "0s".into() } else { text }
}

/// Where YAML failed to parse. The parser's own message would quote the lines around it,
/// and a mistaken path can point at a file of secrets.
fn yaml_position(e: &serde_saphyr::Error) -> String {
    e.location().map_or("position unknown".into(), |l| {
        format!("line {}, column {}", l.line(), l.column())
    })
}

/// Why YAML failed to parse (`unclosed bracket '['`), without position or quoted lines.
fn yaml_problem(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::MessageFormatter;
    if let serde_saphyr::Error::Budget { breach, .. } = e.without_snippet() {
        return budget_problem(breach);
    }
    serde_saphyr::DefaultMessageFormatter
        .format_message(e.without_snippet())
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A YAML reader limit in words: the library's own message prints its Rust form
/// (`budget breached: Nodes { nodes: 250001 }`).
fn budget_problem(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let what = match breach {
        B::Nodes { nodes } => format!("more than {} nodes", nodes.saturating_sub(1)),
        B::Events { events } => format!("more than {} parser events", events.saturating_sub(1)),
        B::Depth { depth } => format!("nesting deeper than {} levels", depth.saturating_sub(1)),
        B::Aliases { aliases } => format!("more than {} aliases", aliases.saturating_sub(1)),
        B::Anchors { anchors } => format!("more than {} anchors", anchors.saturating_sub(1)),
        B::Documents { documents } => {
            format!("more than {} documents", documents.saturating_sub(1))
        }
        B::ScalarBytes { total_scalar_bytes } => {
            format!("more than {total_scalar_bytes} bytes of text values")
        }
        B::AliasAnchorRatio { .. } => "far more alias uses than anchors (an alias bomb)".into(),
        _ => "more content than the reader allows".into(),
    };
    format!(
        "the file has {what}, past what the YAML reader accepts; a scenario this large is not \
         supported: make it smaller"
    )
}

/// Walks the YAML tree; knows the file for error messages.
struct YamlWalker<'a> {
    file: &'a Path,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A YAML value as the user would recognise it in a message.
fn shown(v: &Value) -> String {
    match v {
        Value::Null | Value::Array(_) | Value::Object(_) => type_name(v).into(),
        other => other.to_string(),
    }
}

/// What a value is, without what it holds: for a whole document, whose text may be anything.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl YamlWalker<'_> {
    fn err(&self, path: impl Into<String>, problem: impl Into<String>) -> ScenarioError {
        let path = path.into();
        ScenarioError::Invalid {
            file: self.file.to_path_buf(),
            path: if path.is_empty() {
                "top level".into()
            } else {
                path
            },
            problem: problem.into(),
        }
    }

    fn mapping<'v>(
        &self,
        v: &'v Value,
        path: &str,
        allowed: &[&str],
    ) -> Result<&'v Map<String, Value>, ScenarioError> {
        let m = v
            .as_object()
            .ok_or_else(|| self.err(path, format!("must be a mapping, not {}", type_name(v))))?;
        if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(self.err(
                join(path, k),
                format!("unknown field (expected one of: {})", allowed.join(", ")),
            ));
        }
        Ok(m)
    }

    fn required<'v>(
        &self,
        m: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<&'v Value, ScenarioError> {
        m.get(key)
            .ok_or_else(|| self.err(join(path, key), "is required"))
    }

    fn string(&self, v: &Value, path: &str) -> Result<String, ScenarioError> {
        v.as_str()
            .map(String::from)
            .ok_or_else(|| self.err(path, format!("must be a string, not {}", shown(v))))
    }

    fn uint(&self, v: &Value, path: &str, max: u64) -> Result<u64, ScenarioError> {
        v.as_u64().filter(|n| *n <= max).ok_or_else(|| {
            self.err(
                path,
                format!("must be a whole number from 0 to {max}, not {}", shown(v)),
            )
        })
    }

    fn duration(&self, v: &Value, path: &str) -> Result<Duration, ScenarioError> {
        match v {
            Value::String(s) => parse_duration(s).ok_or_else(|| {
                self.err(path, format!("{s:?} is not a duration ({DURATION_HINT})"))
            }),
            other => Err(self.err(
                path,
                format!("{} is not a duration ({DURATION_HINT})", shown(other)),
            )),
        }
    }

    fn rate(&self, v: &Value, path: &str) -> Result<f64, ScenarioError> {
        v.as_f64()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| {
                self.err(
                    path,
                    format!("must be a share between 0 and 1, not {}", shown(v)),
                )
            })
    }

    fn image_config(&self, v: &Value, path: &str) -> Result<ImageConfig, ScenarioError> {
        if !v.is_object() {
            return Err(self.err(
                path,
                format!(
                    "must be an image's settings such as {{fail: ImagePullBackOff}} or \
                     {{startSeconds: 5}}, not {}: the keys above it are image references",
                    shown(v)
                ),
            ));
        }
        serde_json::from_value(v.clone()).map_err(|e| self.err(path, e.to_string()))
    }

    fn image_configs(
        &self,
        v: &Value,
        path: &str,
    ) -> Result<BTreeMap<String, ImageConfig>, ScenarioError> {
        let m = v.as_object().ok_or_else(|| {
            self.err(
                path,
                format!("must map image references to settings, not {}", shown(v)),
            )
        })?;
        m.iter()
            .map(|(k, v)| Ok((k.clone(), self.image_config(v, &format!("{path}[{k:?}]"))?)))
            .collect()
    }

    fn kubelet(&self, v: &Value) -> Result<KubeletConfig, ScenarioError> {
        let m = self.mapping(
            v,
            "kubelet",
            &[
                "startSeconds",
                "readySeconds",
                "images",
                "nodes",
                "nodePools",
                "binding",
                "resizeSeconds",
            ],
        )?;
        let mut c = KubeletConfig::default();
        if let Some(v) = m.get("startSeconds") {
            c.start_seconds = self.uint(v, "kubelet.startSeconds", u64::from(u32::MAX))?;
        }
        if let Some(v) = m.get("readySeconds") {
            c.ready_seconds = self.uint(v, "kubelet.readySeconds", u64::from(u32::MAX))?;
        }
        if let Some(v) = m.get("images") {
            c.images = self.image_configs(v, "kubelet.images")?;
        }
        if let Some(v) = m.get("nodes") {
            c.nodes = self.nodes(v, "kubelet.nodes")?;
        }
        if let Some(v) = m.get("nodePools") {
            let pools = v.as_array().ok_or_else(|| {
                self.err(
                    "kubelet.nodePools",
                    format!(
                        "must be a list of pools such as {{count: 2, cpu: \"4\", memory: 8Gi}}, not {}",
                        shown(v)
                    ),
                )
            })?;
            c.node_pools = pools
                .iter()
                .enumerate()
                .map(|(i, p)| self.nodes(p, &format!("kubelet.nodePools[{i}]")))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = m.get("binding") {
            c.binding = serde_json::from_value(v.clone()).map_err(|_| {
                self.err(
                    "kubelet.binding",
                    format!("must be FirstFit or Spread, not {}", shown(v)),
                )
            })?;
        }
        if let Some(v) = m.get("resizeSeconds") {
            c.resize_seconds = self.uint(v, "kubelet.resizeSeconds", u64::from(u32::MAX))?;
        }
        c.validate()
            .map_err(|e| self.err(join("kubelet", &e.path), e.problem))?;
        Ok(c)
    }

    /// One pool of nodes (`kubelet.nodes`, an entry of `kubelet.nodePools`): sizes may be
    /// written as numbers (`cpu: 4`) or quantities (`"3500m"`).
    fn nodes(&self, v: &Value, path: &str) -> Result<NodesConfig, ScenarioError> {
        let m = self.mapping(v, path, &["count", "cpu", "memory", "pods"])?;
        let mut c = NodesConfig::default();
        if let Some(v) = m.get("count") {
            c.count = u32::try_from(self.uint(v, &join(path, "count"), u64::from(u32::MAX))?)
                .unwrap_or(u32::MAX);
        }
        if let Some(v) = m.get("pods") {
            c.pods = u32::try_from(self.uint(v, &join(path, "pods"), u64::from(u32::MAX))?)
                .unwrap_or(u32::MAX);
        }
        for (key, slot) in [("cpu", &mut c.cpu), ("memory", &mut c.memory)] {
            match m.get(key) {
                None => {}
                Some(Value::String(q)) => *slot = Quantity(q.clone()),
                Some(Value::Number(n)) => *slot = Quantity(n.to_string()),
                Some(other) => {
                    return Err(self.err(
                        join(path, key),
                        format!(
                            "must be a quantity such as \"4\" or \"8Gi\", not {}",
                            shown(other)
                        ),
                    ));
                }
            }
        }
        Ok(c)
    }

    fn manifests(&self, v: &Value, path: &str) -> Result<Vec<Manifest>, ScenarioError> {
        let items = v.as_array().ok_or_else(|| {
            self.err(
                path,
                format!("must be a list of file paths or objects, not {}", shown(v)),
            )
        })?;
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            match item {
                Value::String(rel) => out.extend(self.manifest_file(rel, &at)?),
                Value::Object(_) => {
                    self.check_object(item, &at)?;
                    out.push(Manifest {
                        origin: format!("{at} (inline)"),
                        object: item.clone(),
                    });
                }
                other => {
                    return Err(self.err(
                        at,
                        format!("must be a file path or an object, not {}", shown(other)),
                    ));
                }
            }
        }
        Ok(out)
    }

    fn manifest_file(&self, rel: &str, at: &str) -> Result<Vec<Manifest>, ScenarioError> {
        let base = self.file.parent().unwrap_or(Path::new(""));
        let resolved = base.join(rel);
        let text = std::fs::read_to_string(&resolved).map_err(|e| {
            self.err(
                at,
                format!("cannot read {rel} ({}): {e}", resolved.display()),
            )
        })?;
        // Position only: the parser's message may quote the file, which may be anything.
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).map_err(|e| {
            self.err(
                at,
                format!("{rel} is not valid YAML ({})", yaml_position(&e)),
            )
        })?;
        let mut out = Vec::new();
        for (d, doc) in docs.into_iter().enumerate() {
            if doc.is_null() {
                continue;
            }
            let origin = format!("{at} ({rel}, document {})", d + 1);
            self.check_object(&doc, &origin)?;
            out.push(Manifest {
                origin,
                object: doc,
            });
        }
        if out.is_empty() {
            return Err(self.err(at, format!("{rel} holds no objects")));
        }
        Ok(out)
    }

    /// What the API server needs before anything else: apiVersion, kind and a name.
    fn check_object(&self, v: &Value, at: &str) -> Result<(), ScenarioError> {
        let Some(m) = v.as_object() else {
            return Err(self.err(at, format!("must be an object, not {}", type_name(v))));
        };
        for key in ["apiVersion", "kind"] {
            match m.get(key) {
                Some(Value::String(s)) if !s.is_empty() => {}
                _ => return Err(self.err(join(at, key), "is required (a non-empty string)")),
            }
        }
        let meta = &v["metadata"];
        let named = ["name", "generateName"]
            .iter()
            .any(|k| meta[k].as_str().is_some_and(|s| !s.is_empty()));
        if !named {
            return Err(self.err(
                join(at, "metadata.name"),
                "is required (or metadata.generateName)",
            ));
        }
        Ok(())
    }

    fn steps(&self, v: &Value) -> Result<Vec<Step>, ScenarioError> {
        let items = v
            .as_array()
            .ok_or_else(|| self.err("steps", format!("must be a list, not {}", shown(v))))?;
        let mut out: Vec<Step> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("steps[{i}]");
            let mut allowed = vec!["at"];
            allowed.extend(STEP_KINDS);
            let m = self.mapping(item, &path, &allowed)?;
            let at = self.duration(self.required(m, &path, "at")?, &join(&path, "at"))?;
            if let Some(prev) = out.last()
                && at < prev.at
            {
                return Err(self.err(
                    join(&path, "at"),
                    format!(
                        "{:?} is earlier than steps[{}] at {:?}; steps must be in time order",
                        m["at"].as_str().unwrap_or_default(),
                        i - 1,
                        items[i - 1]["at"].as_str().unwrap_or_default()
                    ),
                ));
            }
            let kinds: Vec<&str> = m
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "at")
                .collect();
            let kind = match kinds.as_slice() {
                [k] => *k,
                [] => {
                    return Err(self.err(
                        path,
                        format!("has no action (add one of: {})", STEP_KINDS.join(", ")),
                    ));
                }
                many => {
                    return Err(self.err(
                        path,
                        format!(
                            "has {} actions ({}); use one step per action",
                            many.len(),
                            many.join(", ")
                        ),
                    ));
                }
            };
            let action = self.action(kind, &m[kind], &join(&path, kind))?;
            self.check_pod_refs(&m[kind], &join(&path, kind))?;
            out.push(Step { at, action });
        }
        Ok(out)
    }

    /// Every `${pods[N]}` in a step must be readable before the run starts.
    fn check_pod_refs(&self, v: &Value, path: &str) -> Result<(), ScenarioError> {
        super::podref::try_each_string(v, &mut |s| {
            super::podref::check(s).map_err(|e| self.err(path, e.to_string()))
        })
    }

    fn target(&self, m: &Map<String, Value>, path: &str) -> Result<StepObject, ScenarioError> {
        let kind = self.string(self.required(m, path, "kind")?, &join(path, "kind"))?;
        let name = self.string(self.required(m, path, "name")?, &join(path, "name"))?;
        let namespace = m
            .get("namespace")
            .map(|v| self.string(v, &join(path, "namespace")))
            .transpose()?;
        Ok(StepObject {
            kind,
            name,
            namespace,
        })
    }

    fn action(&self, kind: &str, v: &Value, path: &str) -> Result<StepAction, ScenarioError> {
        match kind {
            "patch" => {
                let m = self.mapping(v, path, &["kind", "name", "namespace", "type", "patch"])?;
                let target = self.target(m, path)?;
                let type_text =
                    self.string(self.required(m, path, "type")?, &join(path, "type"))?;
                let r#type: PatchType = type_text.parse().map_err(|_| {
                    self.err(
                        join(path, "type"),
                        format!("{type_text:?} is not a patch type (use json, merge or strategic)"),
                    )
                })?;
                if r#type == PatchType::Strategic && CUSTOM_KINDS.contains(&target.kind.as_str()) {
                    return Err(self.err(
                        join(path, "type"),
                        format!(
                            "strategic merge patches are not supported for custom resources like {}; use merge or json",
                            target.kind
                        ),
                    ));
                }
                let patch = self.required(m, path, "patch")?.clone();
                self.check_patch(r#type, &patch, &join(path, "patch"))?;
                Ok(StepAction::Patch(PatchStep {
                    target,
                    r#type,
                    patch,
                }))
            }
            "annotate" => {
                let m = self.mapping(v, path, &["kind", "name", "namespace", "key", "value"])?;
                let target = self.target(m, path)?;
                let key = self.string(self.required(m, path, "key")?, &join(path, "key"))?;
                if key.is_empty() {
                    return Err(self.err(join(path, "key"), "must not be empty"));
                }
                let value = match m.get("value") {
                    None => {
                        return Err(self.err(
                            join(path, "value"),
                            "is required (a string, or null to remove the annotation)",
                        ));
                    }
                    Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => {
                        return Err(self.err(
                            join(path, "value"),
                            format!(
                                "must be a string or null, not {} (quote it: \"{}\")",
                                shown(other),
                                shown(other)
                            ),
                        ));
                    }
                };
                Ok(StepAction::Annotate { target, key, value })
            }
            "delete" => {
                let m = self.mapping(v, path, &["kind", "name", "namespace"])?;
                Ok(StepAction::Delete(self.target(m, path)?))
            }
            "scale" => {
                let m = self.mapping(v, path, &["kind", "name", "namespace", "replicas"])?;
                let target = self.target(m, path)?;
                let replicas = self.uint(
                    self.required(m, path, "replicas")?,
                    &join(path, "replicas"),
                    u64::from(i32::MAX.unsigned_abs()),
                )?;
                Ok(StepAction::Scale {
                    target,
                    replicas: i32::try_from(replicas).unwrap_or(i32::MAX),
                })
            }
            "apply" => Ok(StepAction::Apply(self.manifests(v, path)?)),
            "restartOperator" => match v {
                Value::Bool(true) => Ok(StepAction::RestartOperator),
                other => Err(self.err(
                    path,
                    format!(
                        "must be true (remove the step otherwise), not {}",
                        shown(other)
                    ),
                )),
            },
            "crashOperatorAfterWrites" => {
                let n = self.uint(v, path, u64::from(u32::MAX))?;
                if n == 0 {
                    return Err(self.err(path, "must be at least 1 (the write to crash after)"));
                }
                Ok(StepAction::CrashOperatorAfterWrites(
                    u32::try_from(n).unwrap_or(u32::MAX),
                ))
            }
            _ => Ok(StepAction::SetImage(self.image_configs(v, path)?)),
        }
    }

    /// A JSON patch must be a list of RFC 6902 operations; merge patches must be mappings.
    fn check_patch(&self, t: PatchType, patch: &Value, path: &str) -> Result<(), ScenarioError> {
        if t != PatchType::Json {
            return match patch {
                Value::Object(_) => Ok(()),
                other => Err(self.err(
                    path,
                    format!("a {t} patch must be a mapping, not {}", shown(other)),
                )),
            };
        }
        let ops = patch.as_array().ok_or_else(|| {
            self.err(
                path,
                format!(
                    "a json patch must be a list of operations, not {}",
                    shown(patch)
                ),
            )
        })?;
        for (i, op) in ops.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let m = self.mapping(op, &at, &["op", "path", "value", "from"])?;
            let name = self.string(self.required(m, &at, "op")?, &join(&at, "op"))?;
            let needs: &[&str] = match name.as_str() {
                "add" | "replace" | "test" => &["path", "value"],
                "remove" => &["path"],
                "move" | "copy" => &["path", "from"],
                other => {
                    return Err(self.err(
                        join(&at, "op"),
                        format!(
                            "{other:?} is not a JSON patch operation (add, remove, replace, move, copy, test)"
                        ),
                    ));
                }
            };
            for key in needs {
                let v = self.required(m, &at, key)?;
                if *key != "value" {
                    let p = self.string(v, &join(&at, key))?;
                    if !(p.is_empty() || p.starts_with('/')) {
                        return Err(self.err(
                            join(&at, key),
                            format!("{p:?} is not a JSON pointer (it starts with /)"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn faults(&self, v: &Value) -> Result<Faults, ScenarioError> {
        let path = "faults";
        let m = self.mapping(
            v,
            path,
            &[
                "seed",
                "conflictRate",
                "errorRate",
                "latency",
                "dropWatchEvery",
            ],
        )?;
        let rate = |key: &str| {
            m.get(key)
                .map(|v| self.rate(v, &join(path, key)))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let duration = |key: &str| {
            m.get(key)
                .map(|v| self.duration(v, &join(path, key)))
                .transpose()
        };
        Ok(Faults {
            seed: m
                .get("seed")
                .map(|v| self.uint(v, "faults.seed", u64::MAX))
                .transpose()?
                .unwrap_or_default(),
            conflict_rate: rate("conflictRate")?,
            error_rate: rate("errorRate")?,
            latency: duration("latency")?,
            drop_watch_every: duration("dropWatchEvery")?,
        })
    }

    fn hooks(&self, v: &Value) -> Result<Vec<HookResponder>, ScenarioError> {
        let list = v
            .as_array()
            .ok_or_else(|| self.err("hooks", format!("must be a list, not {}", type_name(v))))?;
        list.iter()
            .enumerate()
            .map(|(i, r)| {
                let path = format!("hooks[{i}]");
                let m = self.mapping(r, &path, &["url", "answers"])?;
                let url = self.string(self.required(m, &path, "url")?, &join(&path, "url"))?;
                let answers_path = join(&path, "answers");
                let answers = self
                    .required(m, &path, "answers")?
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| {
                        self.err(&answers_path, "must be a list of at least one answer")
                    })?;
                let answers = answers
                    .iter()
                    .enumerate()
                    .map(|(j, a)| {
                        let at = format!("{answers_path}[{j}]");
                        let m = self.mapping(a, &at, &["status", "body", "times", "delay"])?;
                        let status = m
                            .get("status")
                            .map(|v| self.uint(v, &join(&at, "status"), 599))
                            .transpose()?
                            .unwrap_or(200);
                        if status < 100 {
                            return Err(self.err(
                                join(&at, "status"),
                                "must be an HTTP status from 100 to 599",
                            ));
                        }
                        // A string is the body as it is; anything else is sent as JSON.
                        let body = match m.get("body") {
                            None => String::new(),
                            Some(Value::String(b)) => b.clone(),
                            Some(other) => other.to_string(),
                        };
                        let times = m
                            .get("times")
                            .map(|v| self.uint(v, &join(&at, "times"), u64::from(u32::MAX)))
                            .transpose()?
                            .unwrap_or(1);
                        if times == 0 {
                            return Err(self.err(join(&at, "times"), "must be at least 1"));
                        }
                        let delay = m
                            .get("delay")
                            .map(|v| self.duration(v, &join(&at, "delay")))
                            .transpose()?;
                        Ok(HookAnswer {
                            status: status as u16,
                            body,
                            times,
                            delay,
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Ok(HookResponder { url, answers })
            })
            .collect()
    }

    fn until(&self, v: &Value) -> Result<Until, ScenarioError> {
        let m = self.mapping(v, "until", &["settled", "timeout", "maxPods"])?;
        let mut u = Until::default();
        if let Some(s) = m.get("settled") {
            u.settled = s.as_bool().ok_or_else(|| {
                self.err(
                    "until.settled",
                    format!("must be true or false, not {}", shown(s)),
                )
            })?;
        }
        if let Some(t) = m.get("timeout") {
            u.timeout = self.duration(t, "until.timeout")?;
        }
        if let Some(n) = m.get("maxPods") {
            u.max_pods = self.uint(n, "until.maxPods", MAX_PODS_LIMIT)? as usize;
        }
        Ok(u)
    }
}

#[cfg(test)]
mod tests;
