//! The install manifests: what `kubectl kustomize` renders from `deploy/` and its overlays
//! (with the real kubectl), checked as a platform team would review them, and the Dockerfile.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// `kubectl kustomize DIR` (relative to the repository) as parsed documents; `None`, said on
/// stderr, when kubectl is missing.
fn render(dir: &str) -> Option<Vec<Value>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let out = match Command::new("kubectl").arg("kustomize").arg(&path).output() {
        Ok(out) => out,
        Err(_) => {
            eprintln!("SKIPPED: no kubectl on PATH; {dir} was not rendered");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap())
}

/// `kind/namespace/name` of every document.
fn objects(docs: &[Value]) -> BTreeSet<String> {
    docs.iter()
        .map(|d| {
            let md = &d["metadata"];
            format!(
                "{}/{}/{}",
                d["kind"].as_str().unwrap(),
                md["namespace"].as_str().unwrap_or(""),
                md["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

fn operator_container(docs: &[Value]) -> &Value {
    &find(docs, "Deployment", "gamedeploy").expect("the operator Deployment")["spec"]["template"]["spec"]
        ["containers"][0]
}

fn args(docs: &[Value]) -> Vec<&str> {
    operator_container(docs)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

#[test]
fn kustomize_installs_every_object_the_operator_needs() {
    let Some(docs) = render("deploy") else { return };
    let want: BTreeSet<String> = [
        "Namespace//gamedeploy",
        "CustomResourceDefinition//gamedeployments.tkex.tencent.com",
        "CustomResourceDefinition//hookruns.tkex.tencent.com",
        "CustomResourceDefinition//hooktemplates.tkex.tencent.com",
        "ServiceAccount/gamedeploy/gamedeploy",
        "ClusterRole//gamedeploy",
        "ClusterRoleBinding//gamedeploy",
        "Role/gamedeploy/gamedeploy-leader-election",
        "RoleBinding/gamedeploy/gamedeploy-leader-election",
        "Deployment/gamedeploy/gamedeploy",
        "Service/gamedeploy/gamedeploy-metrics",
        "ValidatingAdmissionPolicy//gamedeploy-deletion-protection",
        "ValidatingAdmissionPolicyBinding//gamedeploy-deletion-protection",
        "ValidatingAdmissionPolicy//gamedeploy-crd-deletion-protection",
        "ValidatingAdmissionPolicyBinding//gamedeploy-crd-deletion-protection",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let got = objects(&docs);
    let missing: Vec<&String> = want.difference(&got).collect();
    assert!(missing.is_empty(), "missing {missing:?} from {got:?}");
    // The CRDs installed are the generated ones, unchanged by kustomize.
    for crd in gamedeploy_core::api::crds() {
        let name = crd.metadata.name.clone().unwrap();
        // Typed, so that kubectl's `9223372036854776000` equals `9.223372036854776e18`.
        let rendered: CustomResourceDefinition = serde_json::from_value(
            find(&docs, "CustomResourceDefinition", &name)
                .unwrap()
                .clone(),
        )
        .unwrap();
        assert!(
            rendered.spec == crd.spec,
            "{name} differs from `gamedeploy crds`"
        );
    }
}

/// Two replicas (one leads), non-root, read-only root filesystem, no privilege escalation, no
/// capabilities, RuntimeDefault seccomp, requests and limits, probes on the metrics port, the
/// pinned image of this version.
#[test]
fn the_operator_deployment_is_hardened_and_probed() {
    let Some(docs) = render("deploy") else { return };
    let deployment = find(&docs, "Deployment", "gamedeploy").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "gamedeploy");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = operator_container(&docs);
    assert_eq!(
        c["image"],
        format!(
            "ghcr.io/gamedeploy/gamedeploy:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                c["resources"][kind][resource].is_string(),
                "{kind}.{resource}"
            );
        }
    }
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(args(&docs)[0], "run");
    assert!(
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "POD_NAMESPACE"
                && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"),
        "the lease namespace comes from the downward API"
    );
    let service = find(&docs, "Service", "gamedeploy-metrics").unwrap();
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn the_single_namespace_overlay_narrows_the_watch_and_the_rights() {
    let Some(docs) = render("deploy/overlays/single-namespace") else {
        return;
    };
    assert!(args(&docs).contains(&"--namespace=games"));
    assert!(
        find(&docs, "ClusterRoleBinding", "gamedeploy").is_none(),
        "the cluster-wide binding is gone"
    );
    let binding = find(&docs, "RoleBinding", "gamedeploy").unwrap();
    assert_eq!(binding["metadata"]["namespace"], "games");
    assert_eq!(binding["roleRef"]["name"], "gamedeploy");
    let nodes = find(&docs, "ClusterRole", "gamedeploy-nodes").unwrap();
    assert_eq!(
        nodes["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]}])
    );
    assert!(find(&docs, "ClusterRoleBinding", "gamedeploy-nodes").is_some());
}

#[test]
fn the_image_and_json_log_overlays_change_only_what_they_say() {
    let Some(base) = render("deploy") else { return };
    let Some(image) = render("deploy/overlays/custom-image") else {
        return;
    };
    assert_eq!(
        operator_container(&image)["image"],
        "registry.example.com/platform/gamedeploy:0.1.0-custom"
    );
    assert_eq!(objects(&image), objects(&base));
    let Some(json) = render("deploy/overlays/json-logs") else {
        return;
    };
    let mut want = args(&base);
    want.push("--log-format=json");
    assert_eq!(args(&json), want);
    assert_eq!(objects(&json), objects(&base));
}

/// The image builds the operator-only binary from a pinned toolchain, with the lock file, and
/// runs it as a non-root user on a minimal base.
#[test]
fn the_dockerfile_builds_the_operator_only_binary_as_non_root() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let from: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(from.len(), 2, "a build stage and a runtime stage");
    assert!(
        from[0].starts_with("FROM rust:1.")
            && from[0]
                .split(':')
                .nth(1)
                .is_some_and(|t| t.chars().filter(|c| *c == '.').count() >= 2),
        "the toolchain is pinned to a patch version: {}",
        from[0]
    );
    assert!(
        from[1].contains("distroless") || from[1].contains("scratch"),
        "{}",
        from[1]
    );
    assert!(text.contains("cargo build --locked --release --no-default-features"));
    let user = text
        .lines()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(!user.contains("root") || user.contains("nonroot"), "{user}");
    assert!(!user.trim_start_matches("USER ").starts_with('0'), "{user}");
}
