//! Other representations kubectl and kube ask for: `as=Table` and metadata-only objects.

use crate::support::*;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, WatchEvent, WatchParams};
use serde_json::{Value, json};

/// What kubectl sends to get a table.
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

#[tokio::test]
async fn table_output_uses_printer_columns() {
    let (env, api) = widget_env("table").await;
    create(&api, &widget("w", json!({"image": "a", "replicas": 4}))).await;
    let v = get_as(
        &env.client,
        &format!("/apis/{GROUP}/v1/namespaces/{}/widgets", env.ns),
        TABLE,
    )
    .await;
    assert_eq!(v["kind"], "Table");
    let cols: Vec<&str> = names_in(&v["columnDefinitions"]);
    assert_eq!(
        cols,
        vec!["Name", "Desired", "Ready"],
        "printer columns replace the default Age column"
    );
    assert_eq!(v["rows"][0]["cells"][0], "w");
    assert_eq!(v["rows"][0]["cells"][1], 4);
    assert_eq!(
        v["rows"][0]["cells"][2],
        Value::Null,
        "missing values are null cells"
    );
    // Pods get kubectl's columns, computed server-side.
    let pods: Api<Pod> = env.api();
    create(&pods, &pod("p", "nginx")).await;
    send_status_patch(
        &pods,
        "p",
        Patch::Merge(
            json!({"status": {"phase": "Running", "containerStatuses": [{
        "name": "app", "image": "nginx", "imageID": "", "ready": false, "restartCount": 2,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
        ),
    )
    .await
    .unwrap();
    let v = get_as(
        &env.client,
        &format!("/api/v1/namespaces/{}/pods", env.ns),
        TABLE,
    )
    .await;
    let cols: Vec<&str> = names_in(&v["columnDefinitions"]);
    assert_eq!(&cols[..5], &["Name", "Ready", "Status", "Restarts", "Age"]);
    let cells = &v["rows"][0]["cells"];
    assert_eq!(
        (cells[1].as_str(), cells[2].as_str(), cells[3].as_str()),
        (Some("0/1"), Some("CrashLoopBackOff"), Some("2"))
    );
    env.cleanup().await;
}

#[tokio::test]
async fn metadata_only_requests() {
    use kube::core::PartialObjectMeta;
    let env = env("metadata").await;
    let leases: Api<Lease> = env.api();
    create(&leases, &lease("a")).await;
    let meta: Api<PartialObjectMeta<Lease>> = env.api();
    let one = meta.get("a").await.unwrap();
    assert_eq!(one.metadata.name.as_deref(), Some("a"));
    let list = meta.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let raw_list = get_as(
        &env.client,
        &format!("/apis/coordination.k8s.io/v1/namespaces/{}/leases", env.ns),
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )
    .await;
    assert_eq!(raw_list["kind"], "PartialObjectMetadataList");
    assert!(raw_list["items"][0].get("spec").is_none());
    let mut w = meta
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(WAIT, w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("a")),
        other => panic!("{other:?}"),
    }
    env.cleanup().await;
}

/// The Table of Events through both APIs (one printer in kube-apiserver, `printEvent`, which
/// prints wide): LAST SEEN, TYPE, REASON, OBJECT (`kind/name`, kind lower-cased) and MESSAGE,
/// with SUBOBJECT, SOURCE, FIRST SEEN, COUNT and NAME for `-o wide`.
#[tokio::test]
async fn event_tables_have_kube_apiservers_columns() {
    let env = env("event-table").await;
    let core = format!("/api/v1/namespaces/{}/events", env.ns);
    let (code, v) = post_json(
        &env.client,
        &core,
        json!({"metadata": {"name": "old"}, "type": "Warning", "reason": "BackOff",
            "message": "  restarting  ", "count": 3,
            "firstTimestamp": "2020-01-01T00:00:00Z", "lastTimestamp": "2020-01-01T00:00:00Z",
            "source": {"component": "kubelet", "host": "node-1"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": env.ns,
                "fieldPath": "spec.containers{app}"}})
        .to_string()
        .as_bytes(),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let (code, v) = post_json(
        &env.client,
        &format!("/apis/events.k8s.io/v1/namespaces/{}/events", env.ns),
        json!({"metadata": {"name": "new"}, "eventTime": now, "type": "Normal",
            "reason": "Synced", "action": "Sync", "note": "done",
            "reportingController": "ctl", "reportingInstance": "ctl-1",
            "regarding": {"kind": "Lease", "name": "l", "namespace": env.ns}})
        .to_string()
        .as_bytes(),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    for uri in [
        core.clone(),
        format!("/apis/events.k8s.io/v1/namespaces/{}/events", env.ns),
    ] {
        let t = get_as(&env.client, &uri, TABLE).await;
        assert_eq!(t["kind"], "Table", "{t}");
        let cols: Vec<(&str, i64)> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap(),
                    c["priority"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(
            cols,
            [
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1)
            ],
            "{uri}"
        );
        let row = |name: &str| -> Vec<Value> {
            t["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["object"]["metadata"]["name"] == name)
                .unwrap_or_else(|| panic!("{name} in {t}"))["cells"]
                .as_array()
                .unwrap()
                .clone()
        };
        let old = row("old");
        assert_eq!(
            old[1..7],
            [
                json!("Warning"),
                json!("BackOff"),
                json!("pod/p"),
                json!("spec.containers{app}"),
                json!("kubelet, node-1"),
                json!("restarting")
            ]
        );
        let years = old[0].as_str().unwrap();
        // kubectl's duration for years: `3y` or `3y120d`.
        let (y, d) = years.split_once('y').unwrap_or(("", "x"));
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        assert!(
            digits(y) && (d.is_empty() || d.strip_suffix('d').is_some_and(digits)),
            "{years}"
        );
        assert_eq!(old[7], old[0], "first and last seen alike");
        assert_eq!((&old[8], &old[9]), (&json!(3), &json!("old")));
        let new = row("new");
        assert_eq!(
            new[1..7],
            [
                json!("Normal"),
                json!("Synced"),
                json!("lease/l"),
                json!(""),
                json!("ctl, ctl-1"),
                json!("done")
            ]
        );
        assert!(new[0].as_str().unwrap().ends_with('s'), "{new:?}");
        assert_eq!((&new[8], &new[9]), (&json!(1), &json!("new")));
    }
    env.cleanup().await;
}

/// `kubectl get events -w` watches as=Table: each event's object is a one-row Table, the
/// first with the column definitions, later ones without.
#[tokio::test]
async fn a_table_watch_sends_one_row_tables() {
    let env = env("table-watch").await;
    let leases: Api<Lease> = env.api();
    let rv = create(&leases, &lease("a"))
        .await
        .metadata
        .resource_version
        .unwrap();
    create(&leases, &lease("b")).await;
    let req = http::Request::builder()
        .uri(format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases?watch=true&resourceVersion={rv}&timeoutSeconds=10",
            env.ns
        ))
        .header("accept", TABLE)
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = env.client.send(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let first = next_line(&mut body, &mut buf).await;
    assert_eq!(first["type"], "ADDED", "{first}");
    assert_eq!(first["object"]["kind"], "Table", "{first}");
    assert_eq!(first["object"]["rows"][0]["cells"][0], "b", "{first}");
    assert!(
        first["object"]["columnDefinitions"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{first}"
    );
    // A change: a Table without the column definitions.
    let mut l = leases.get("b").await.unwrap();
    l.spec.as_mut().unwrap().holder_identity = Some("me".into());
    leases.replace("b", &Default::default(), &l).await.unwrap();
    let next = next_line(&mut body, &mut buf).await;
    assert_eq!(next["type"], "MODIFIED", "{next}");
    assert_eq!(next["object"]["kind"], "Table", "{next}");
    assert_eq!(next["object"]["rows"][0]["cells"][1], "me", "{next}");
    assert!(
        next["object"]["columnDefinitions"]
            .as_array()
            .is_none_or(|c| c.is_empty()),
        "{next}"
    );
    env.cleanup().await;
}

/// The next line of a streamed response body, as JSON.
async fn next_line(body: &mut kube::client::Body, buf: &mut Vec<u8>) -> Value {
    use http_body_util::BodyExt;
    loop {
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            return serde_json::from_slice(&line[..i]).expect("a JSON line");
        }
        let frame = tokio::time::timeout(WAIT, body.frame())
            .await
            .expect("a line in time")
            .expect("the stream is open")
            .expect("no transport error");
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
    }
}
