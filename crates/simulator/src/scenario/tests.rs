use super::*;

/// A scratch directory with the given files, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str, files: &[(&str, &str)]) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("gamedeploy-scenario-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Dir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const FILE: &str = "fixtures/scenarios/x.yaml";

fn error(text: &str) -> String {
    parse(text, Path::new(FILE)).unwrap_err().to_string()
}

fn step(body: &str) -> String {
    error(&format!("name: x\nsteps:\n  - at: 1s\n    {body}\n"))
}

#[test]
fn durations_parse_like_go() {
    let d = |s| parse_duration(s);
    assert_eq!(d("20s"), Some(Duration::from_secs(20)));
    assert_eq!(d("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(d("2h"), Some(Duration::from_secs(7200)));
    assert_eq!(d("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(d("1h1m1s"), Some(Duration::from_secs(3661)));
    for bad in [
        "",
        "20",
        "20x",
        "s",
        "1.5s",
        "-1s",
        "1m 30s",
        "99999999999999999999h",
    ] {
        assert_eq!(d(bad), None, "{bad}");
    }
}

#[test]
fn durations_format_back_exactly() {
    for text in ["0s", "20s", "1m30s", "2h", "1h1s", "1m500ms"] {
        assert_eq!(format_duration(parse_duration(text).unwrap()), text);
    }
}

#[test]
fn loads_a_full_scenario_with_files_and_inline_objects() {
    let dir = Dir::new(
        "full",
        &[
            (
                "deploy/pods.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Pod\nmetadata: {generateName: b-}\n",
            ),
            (
                "scenarios/s.yaml",
                r#"
name: seed
kubelet:
  startSeconds: 2
  images:
    "python:retag": { sameDigestAs: "python:3.9" }
    "game:broken": { fail: CrashLoopBackOff }
apply:
  - ../deploy/pods.yaml
  - { apiVersion: v1, kind: Namespace, metadata: { name: games } }
steps:
  - at: 20s
    patch: { kind: GameDeployment, name: gd, type: json,
             patch: [ { op: replace, path: /spec/template/spec/containers/0/image, value: "python:latest" } ] }
  - at: 20s
    annotate: { kind: Pod, name: p, key: k, value: null }
  - at: 1m
    scale: { kind: GameDeployment, name: gd, replicas: 3 }
  - at: 1m30s
    delete: { kind: Pod, name: p, namespace: games }
  - at: 2m
    restartOperator: true
  - at: 2m
    crashOperatorAfterWrites: 2
  - at: 3m
    setImage: { "game:broken": {} }
  - at: 4m
    apply: [ { apiVersion: v1, kind: Pod, metadata: { name: late } } ]
  - at: 5m
    patch: { kind: Pod, name: p, type: strategic, patch: { metadata: { labels: { a: b } } } }
faults: { seed: 7, conflictRate: 0.1, errorRate: 0, dropWatchEvery: 30s }
until: { settled: false, timeout: 1h }
"#,
            ),
        ],
    );
    let s = load(&dir.path("scenarios/s.yaml")).unwrap();
    assert_eq!(s.name, "seed");
    assert_eq!(s.kubelet.start_seconds, 2);
    assert_eq!(s.kubelet.ready_seconds, 1);
    assert_eq!(s.apply.len(), 3);
    assert_eq!(
        s.apply[0].origin,
        "apply[0] (../deploy/pods.yaml, document 1)"
    );
    // Empty documents are not counted.
    assert_eq!(
        s.apply[1].origin,
        "apply[0] (../deploy/pods.yaml, document 2)"
    );
    assert_eq!(s.apply[2].kind(), "Namespace");
    let ats: Vec<u64> = s.steps.iter().map(|s| s.at.as_secs()).collect();
    assert_eq!(ats, vec![20, 20, 60, 90, 120, 120, 180, 240, 300]);
    assert!(
        matches!(&s.steps[0].action, StepAction::Patch(p) if p.r#type == PatchType::Json && p.target.namespace.is_none())
    );
    assert!(matches!(
        &s.steps[1].action,
        StepAction::Annotate { value: None, .. }
    ));
    assert!(matches!(
        &s.steps[2].action,
        StepAction::Scale { replicas: 3, .. }
    ));
    assert!(
        matches!(&s.steps[3].action, StepAction::Delete(t) if t.namespace.as_deref() == Some("games"))
    );
    assert_eq!(s.steps[4].action, StepAction::RestartOperator);
    assert_eq!(s.steps[5].action, StepAction::CrashOperatorAfterWrites(2));
    assert!(
        matches!(&s.steps[6].action, StepAction::SetImage(m) if m["game:broken"] == ImageConfig::default())
    );
    assert!(matches!(&s.steps[7].action, StepAction::Apply(v) if v.len() == 1));
    let f = s.faults.unwrap();
    assert_eq!((f.seed, f.conflict_rate, f.error_rate), (7, 0.1, 0.0));
    assert_eq!(f.drop_watch_every, Some(Duration::from_secs(30)));
    assert_eq!(f.latency, None);
    assert_eq!(
        s.until,
        Until {
            settled: false,
            timeout: Duration::from_secs(3600),
            max_pods: DEFAULT_MAX_PODS,
        }
    );
}

/// The YAML reader's limits read as a sentence, not as its Rust form
/// (`budget breached: Nodes { nodes: 250001 }`).
#[test]
fn a_file_past_the_yaml_readers_limits_says_so_in_words() {
    let text = format!("name: x\nsteps: [{}]", "0,".repeat(300_000));
    let e = error(&text);
    assert!(
        e.contains("the file has more than") && e.contains("make it smaller"),
        "{e}"
    );
    assert!(!e.contains('{') && !e.contains("budget breached"), "{e}");
}

#[test]
fn until_max_pods_defaults_and_reads() {
    let s = parse("name: x\nuntil: {maxPods: 50}", Path::new("x.yaml")).unwrap();
    assert_eq!(s.until.max_pods, 50);
    let s = parse("name: x", Path::new("x.yaml")).unwrap();
    assert_eq!(s.until.max_pods, DEFAULT_MAX_PODS);
}

#[test]
fn defaults_for_a_minimal_scenario() {
    let s = parse("name: x", Path::new(FILE)).unwrap();
    assert_eq!(s.kubelet, KubeletConfig::default());
    assert!(s.apply.is_empty() && s.steps.is_empty() && s.faults.is_none());
    assert_eq!(s.until, Until::default());
}

#[test]
fn bad_files_name_file_field_and_problem() {
    let cases: &[(&str, &str)] = &[
        (
            "name: x\nsteps:\n  - at: 20x\n    restartOperator: true",
            "fixtures/scenarios/x.yaml: steps[0].at: \"20x\" is not a duration (use e.g. 20s, 1m30s, 2h)",
        ),
        ("steps: []", "fixtures/scenarios/x.yaml: name: is required"),
        (
            "name: ''",
            "fixtures/scenarios/x.yaml: name: must not be empty",
        ),
        (
            "name: x\nhooks: [{url: 'http://*', answers: []}]",
            "fixtures/scenarios/x.yaml: hooks[0].answers: must be a list of at least one answer",
        ),
        (
            "name: x\nhooks: [{url: 'http://*', answers: [{status: 42}]}]",
            "fixtures/scenarios/x.yaml: hooks[0].answers[0].status: must be an HTTP status from 100 to 599",
        ),
        (
            "name: x\nhooks: [{url: 'http://*', answers: [{body: ok, delay: soon}]}]",
            "fixtures/scenarios/x.yaml: hooks[0].answers[0].delay: \"soon\" is not a duration (use e.g. 20s, 1m30s, 2h)",
        ),
        (
            "name: x\nhooks: [{answers: [{}]}]",
            "fixtures/scenarios/x.yaml: hooks[0].url: is required",
        ),
        (
            "name: x\nnmae: y",
            "fixtures/scenarios/x.yaml: nmae: unknown field (expected one of: name, kubelet, apply, steps, faults, until, hooks)",
        ),
        (
            "- a",
            "fixtures/scenarios/x.yaml: top level: must be a mapping, not a list",
        ),
        (
            "name: x\nkubelet: {startSecond: 1}",
            "fixtures/scenarios/x.yaml: kubelet.startSecond: unknown field (expected one of: startSeconds, readySeconds, images, nodes, nodePools, binding, resizeSeconds)",
        ),
        (
            "name: x\nkubelet: {readySeconds: -1}",
            "fixtures/scenarios/x.yaml: kubelet.readySeconds: must be a whole number from 0 to 4294967295, not -1",
        ),
        (
            "name: x\nkubelet: {images: {a: {sameDigestAs: a}}}",
            "fixtures/scenarios/x.yaml: kubelet.images[\"a\"].sameDigestAs: digest references form a cycle (a -> a); one of them must name an image of its own",
        ),
        (
            "name: x\nfaults: {conflictRate: 1.5}",
            "fixtures/scenarios/x.yaml: faults.conflictRate: must be a share between 0 and 1, not 1.5",
        ),
        (
            "name: x\nfaults: {errorRate: -0.1}",
            "fixtures/scenarios/x.yaml: faults.errorRate: must be a share between 0 and 1, not -0.1",
        ),
        (
            "name: x\nfaults: {latency: 5}",
            "fixtures/scenarios/x.yaml: faults.latency: 5 is not a duration (use e.g. 20s, 1m30s, 2h)",
        ),
        (
            "name: x\nuntil: {settled: yes please}",
            "fixtures/scenarios/x.yaml: until.settled: must be true or false, not \"yes please\"",
        ),
        (
            "name: x\napply: [42]",
            "fixtures/scenarios/x.yaml: apply[0]: must be a file path or an object, not 42",
        ),
        (
            "name: x\napply: [{kind: Pod, metadata: {name: a}}]",
            "fixtures/scenarios/x.yaml: apply[0].apiVersion: is required (a non-empty string)",
        ),
        (
            "name: x\napply: [{apiVersion: v1, kind: Pod}]",
            "fixtures/scenarios/x.yaml: apply[0].metadata.name: is required (or metadata.generateName)",
        ),
        (
            "name: x\nsteps:\n  - at: 20s\n    restartOperator: true\n  - at: 15s\n    restartOperator: true",
            "fixtures/scenarios/x.yaml: steps[1].at: \"15s\" is earlier than steps[0] at \"20s\"; steps must be in time order",
        ),
        (
            "name: x\nsteps:\n  - restartOperator: true",
            "fixtures/scenarios/x.yaml: steps[0].at: is required",
        ),
        (
            "name: x\nsteps:\n  - at: 1s\n    setImage: {fail: ImagePullBackOff}",
            "fixtures/scenarios/x.yaml: steps[0].setImage[\"fail\"]: must be an image's settings such as {fail: ImagePullBackOff} or {startSeconds: 5}, not \"ImagePullBackOff\": the keys above it are image references",
        ),
        (
            "name: x\nuntil: {maxPods: -1}",
            "fixtures/scenarios/x.yaml: until.maxPods: must be a whole number from 0 to 200000, not -1",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(&error(text), want, "for {text:?}");
    }
}

#[test]
fn each_step_has_exactly_one_valid_action() {
    let cases: &[(&str, &str)] = &[
        (
            "",
            "steps[0]: has no action (add one of: patch, annotate, delete, scale, apply, restartOperator, crashOperatorAfterWrites, setImage)",
        ),
        (
            "restartOperator: true\n    delete: {kind: Pod, name: p}",
            "steps[0]: has 2 actions (delete, restartOperator); use one step per action",
        ),
        (
            "restart: true",
            "steps[0].restart: unknown field (expected one of: at, patch, annotate, delete, scale, apply, restartOperator, crashOperatorAfterWrites, setImage)",
        ),
        (
            "restartOperator: false",
            "steps[0].restartOperator: must be true (remove the step otherwise), not false",
        ),
        (
            "crashOperatorAfterWrites: 0",
            "steps[0].crashOperatorAfterWrites: must be at least 1 (the write to crash after)",
        ),
        (
            "patch: {kind: GameDeployment, name: gd, patch: {}}",
            "steps[0].patch.type: is required",
        ),
        (
            "patch: {kind: GameDeployment, name: gd, type: yaml, patch: {}}",
            "steps[0].patch.type: \"yaml\" is not a patch type (use json, merge or strategic)",
        ),
        (
            "patch: {kind: GameDeployment, name: gd, type: strategic, patch: {}}",
            "steps[0].patch.type: strategic merge patches are not supported for custom resources like GameDeployment; use merge or json",
        ),
        (
            "patch: {kind: GameDeployment, name: gd, type: json, patch: {a: 1}}",
            "steps[0].patch.patch: a json patch must be a list of operations, not a mapping",
        ),
        (
            "patch: {kind: GameDeployment, name: gd, type: merge, patch: [1]}",
            "steps[0].patch.patch: a merge patch must be a mapping, not a list",
        ),
        (
            "patch: {kind: GameDeployment, name: gd, type: json, patch: [{op: set, path: /a}]}",
            "steps[0].patch.patch[0].op: \"set\" is not a JSON patch operation (add, remove, replace, move, copy, test)",
        ),
        (
            "patch: {kind: GameDeployment, name: gd, type: json, patch: [{op: replace, path: /a}]}",
            "steps[0].patch.patch[0].value: is required",
        ),
        (
            "patch: {kind: GameDeployment, name: gd, type: json, patch: [{op: remove, path: spec}]}",
            "steps[0].patch.patch[0].path: \"spec\" is not a JSON pointer (it starts with /)",
        ),
        (
            "patch: {name: gd, type: json, patch: []}",
            "steps[0].patch.kind: is required",
        ),
        (
            "annotate: {kind: Pod, name: p, key: k}",
            "steps[0].annotate.value: is required (a string, or null to remove the annotation)",
        ),
        (
            "annotate: {kind: Pod, name: p, key: k, value: 30}",
            "steps[0].annotate.value: must be a string or null, not 30 (quote it: \"30\")",
        ),
        (
            "annotate: {kind: Pod, name: '${pods[x]}', key: k, value: a}",
            "steps[0].annotate: \"${pods[x]}\": write a pod reference as ${pods[N]} with N a whole number from 0",
        ),
        (
            "annotate: {kind: Pod, name: p, key: '', value: a}",
            "steps[0].annotate.key: must not be empty",
        ),
        (
            "scale: {kind: GameDeployment, name: gd, replicas: -1}",
            "steps[0].scale.replicas: must be a whole number from 0 to 2147483647, not -1",
        ),
        (
            "delete: {kind: Pod, name: p, force: true}",
            "steps[0].delete.force: unknown field (expected one of: kind, name, namespace)",
        ),
        (
            "setImage: [a]",
            "steps[0].setImage: must map image references to settings, not a list",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(step(body), format!("{FILE}: {want}"), "for {body:?}");
    }
    let bad_image = step("setImage: {\"game:v2\": {fail: OOMKilled}}");
    assert!(
        bad_image.starts_with(&format!(
            "{FILE}: steps[0].setImage[\"game:v2\"]: unknown variant `OOMKilled`"
        )),
        "{bad_image}"
    );
}

#[test]
fn unreadable_files_and_bad_yaml_are_reported() {
    let missing = load(Path::new("/nonexistent/gamedeploy/s.yaml")).unwrap_err();
    assert!(matches!(missing, ScenarioError::Read { .. }));
    assert!(
        missing
            .to_string()
            .starts_with("/nonexistent/gamedeploy/s.yaml: cannot read the scenario: "),
        "{missing}"
    );
    let yaml = error("name: [unclosed");
    assert!(
        yaml.starts_with(&format!("{FILE}: not valid YAML (line ")),
        "{yaml}"
    );
    let dir = Dir::new(
        "apply",
        &[
            ("broken.yaml", "apiVersion: v1\nkind: [\n"),
            ("empty.yaml", "---\n"),
            ("nokind.yaml", "apiVersion: v1\nmetadata: {name: a}\n"),
        ],
    );
    let run = |entry: &str| {
        let text = format!("name: x\napply: [{entry}]\n");
        parse(&text, &dir.path("s.yaml")).unwrap_err().to_string()
    };
    let s = dir.path("s.yaml").display().to_string();
    let missing = run("missing.yaml");
    assert!(
        missing.starts_with(&format!(
            "{s}: apply[0]: cannot read missing.yaml ({})",
            dir.path("missing.yaml").display()
        )),
        "{missing}"
    );
    assert!(run("broken.yaml").starts_with(&format!(
        "{s}: apply[0]: broken.yaml is not valid YAML (line "
    )));
    assert_eq!(
        run("empty.yaml"),
        format!("{s}: apply[0]: empty.yaml holds no objects")
    );
    assert_eq!(
        run("nokind.yaml"),
        format!("{s}: apply[0] (nokind.yaml, document 1).kind: is required (a non-empty string)")
    );
}

/// A mistaken `apply` path must not print someone's secrets: the path and where parsing
/// failed, never what the file holds.
#[test]
fn apply_files_are_reported_without_their_content() {
    let dir = Dir::new(
        "secret",
        &[
            (
                "passwd",
                "root:x:0:0:root:/root:/bin/bash\nhunter2:x:1:1::/:/bin/sh\n",
            ),
            ("token", "token: hunter2\nkey: [hunter2\n"),
            ("list", "- hunter2\n"),
        ],
    );
    let s = dir.path("s.yaml").display().to_string();
    let run = |entry: &str| {
        let text = format!("name: x\napply: [{entry}]\n");
        parse(&text, &dir.path("s.yaml")).unwrap_err().to_string()
    };
    assert_eq!(
        run("passwd"),
        format!("{s}: apply[0] (passwd, document 1): must be an object, not a string")
    );
    assert_eq!(
        run("list"),
        format!("{s}: apply[0] (list, document 1): must be an object, not a list")
    );
    let broken = run("token");
    assert!(
        broken.starts_with(&format!("{s}: apply[0]: token is not valid YAML (line ")),
        "{broken}"
    );
    for e in [run("passwd"), run("list"), broken] {
        assert!(!e.contains("hunter2") && !e.contains("root:x"), "{e}");
    }
}

#[test]
fn a_scenario_that_is_not_a_mapping_is_not_echoed() {
    assert_eq!(
        error("root:x:0:0:root:/root:/bin/bash"),
        format!("{FILE}: top level: must be a mapping, not a string")
    );
}

#[test]
fn bad_yaml_names_the_line_and_column_without_a_snippet() {
    let e = error("name: x\nsteps: [\n");
    assert!(
        e.starts_with(&format!("{FILE}: not valid YAML (line 2, column ")),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn steps_after_the_timeout_load_with_a_warning() {
    let s = parse(
            "name: x\nsteps:\n  - at: 10s\n    restartOperator: true\n  - at: 2m\n    restartOperator: true\n  - at: 200s\n    restartOperator: true\nuntil: {timeout: 120s}\n",
            Path::new(FILE),
        )
        .unwrap();
    assert_eq!(
        s.warnings(),
        ["steps[2] at 3m20s comes after until.timeout 2m and will never run"]
    );
    assert!(
        parse("name: x", Path::new(FILE))
            .unwrap()
            .warnings()
            .is_empty()
    );
}

#[test]
fn outcomes_map_to_exit_codes() {
    assert_eq!(ExitStatus::of_run(true).exit_code(), 0);
    assert_eq!(ExitStatus::of_run(false).exit_code(), 1);
    assert_eq!(ExitStatus::InvalidScenario.exit_code(), 2);
}

/// `gamedeploy cluster --kubelet-config`: a file holding a `kubelet:` block's settings, read and
/// refused as that block is.
#[test]
fn the_kubelet_block_sizes_nodes_and_resizes() {
    let file = Path::new("kubelet.yaml");
    let c = parse_kubelet(
        "nodes: {count: 3, cpu: 4, memory: 8Gi, pods: 110}\nbinding: Spread\nresizeSeconds: 2\n",
        file,
    )
    .unwrap();
    assert_eq!(
        (
            c.nodes.count,
            c.nodes.cpu.0.as_str(),
            c.nodes.memory.0.as_str(),
            c.nodes.pods
        ),
        (3, "4", "8Gi", 110)
    );
    assert_eq!(c.binding, simulated_kubelet::Binding::Spread);
    assert_eq!(c.resize_seconds, 2);
    let err = |text: &str| parse_kubelet(text, file).unwrap_err().to_string();
    assert_eq!(
        err("nodes: {cpus: 4}\n"),
        "kubelet.yaml: kubelet.nodes.cpus: unknown field (expected one of: count, cpu, memory, pods)"
    );
    assert_eq!(
        err("binding: BestFit\n"),
        "kubelet.yaml: kubelet.binding: must be FirstFit or Spread, not \"BestFit\""
    );
    assert!(
        err("nodes: {memory: lots}\n")
            .contains("kubelet.nodes.memory: \"lots\" is not a Kubernetes quantity")
    );
    let pools = parse_kubelet(
        "nodePools: [{count: 2, cpu: 4}, {count: 1, cpu: 64, memory: 64Gi}]\n",
        file,
    )
    .unwrap();
    assert_eq!(
        (pools.node_count(), pools.node_size(2).cpu.0.as_str()),
        (3, "64")
    );
    assert_eq!(
        err("nodes: {count: 2}\nnodePools: [{count: 1}]\n"),
        "kubelet.yaml: kubelet.nodePools: set either nodes (one pool) or nodePools, not both"
    );
    assert!(
        err("nodePools: [{count: 1}, {cpu: x4}]\n")
            .contains("kubelet.nodePools[1].cpu: \"x4\" is not a Kubernetes quantity"),
        "{}",
        err("nodePools: [{count: 1}, {cpu: x4}]\n")
    );
    assert!(
        err("nodes: {count: 0}\n").contains("kubelet.nodes.count: there must be at least one node")
    );
}

#[test]
fn a_kubelet_config_file_is_a_scenarios_kubelet_block() {
    let file = Path::new("kubelet.yaml");
    let c = parse_kubelet(
        "startSeconds: 2\nreadySeconds: 3\nimages:\n  \"game:broken\": {fail: ImagePullBackOff}\n",
        file,
    )
    .unwrap();
    let mut expected = KubeletConfig {
        start_seconds: 2,
        ready_seconds: 3,
        ..KubeletConfig::default()
    };
    expected.images.insert(
        "game:broken".into(),
        ImageConfig {
            fail: Some(simulated_kubelet::config::ImageFailure::ImagePullBackOff),
            ..ImageConfig::default()
        },
    );
    assert_eq!(c, expected);
    let same = parse(
        "name: x\nkubelet:\n  startSeconds: 2\n  readySeconds: 3\n  images:\n    \"game:broken\": {fail: ImagePullBackOff}\n",
        Path::new(FILE),
    )
    .unwrap();
    assert_eq!(same.kubelet, c);
    assert_eq!(
        parse_kubelet("startSecond: 2\n", file)
            .unwrap_err()
            .to_string(),
        "kubelet.yaml: kubelet.startSecond: unknown field (expected one of: startSeconds, readySeconds, images, nodes, nodePools, binding, resizeSeconds)"
    );
    let missing = load_kubelet(Path::new("/nonexistent/kubelet.yaml")).unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/kubelet.yaml"),
        "{missing}"
    );
}
