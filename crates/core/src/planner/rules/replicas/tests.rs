use super::*;

fn pod(name: &str, rev: &str) -> PodView {
    PodView {
        name: name.into(),
        revision: Some(rev.into()),
        node_name: Some("n1".into()),
        phase: Some("Running".into()),
        ready: true,
        ready_since: Some("2026-01-01T00:00:00Z".parse().unwrap()),
        ..Default::default()
    }
}

fn suffixes(list: &[&str]) -> impl FnMut() -> String {
    let mut it: Vec<String> = list.iter().rev().map(|s| s.to_string()).collect();
    move || it.pop().expect("enough suffixes")
}

fn input<'a>(
    pods: &'a [&'a PodView],
    replicas: i32,
    costs: &'a BTreeMap<String, i64>,
) -> ReplicaInput<'a> {
    ReplicaInput {
        name: "gd",
        pods,
        replicas,
        partition: 0,
        max_surge: 0,
        update_revision: "r2",
        current_revision: "r2",
        pods_to_delete: &[],
        node_costs: costs,
        cost_descending: false,
        create_batch: None,
        min_ready_seconds: 0,
        now: "2026-01-02T00:00:00Z".parse().unwrap(),
    }
}

#[test]
fn creates_with_unique_names() {
    let pods = [pod("gd-aaaaa", "r2")];
    let costs = BTreeMap::new();
    let pods: Vec<&PodView> = pods.iter().collect();
    let p = replica_diff(
        &input(&pods, 3, &costs),
        &mut suffixes(&["aaaaa", "bbbbb", "ccccc"]),
    );
    let names: Vec<&str> = p.create.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["gd-bbbbb", "gd-ccccc"], "a taken suffix is skipped");
    assert_eq!(p.create[0].instance_id, "bbbbb");
}

/// A schema-valid `replicas: 2147483647` planned two billion pods in one plan.
#[test]
fn one_plan_creates_at_most_a_burst() {
    let costs = BTreeMap::new();
    let mut n = 0u64;
    let p = replica_diff(&input(&[], i32::MAX, &costs), &mut || {
        n += 1;
        format!("{n:x}")
    });
    assert_eq!(p.create.len(), MAX_CREATES_PER_PLAN as usize);
}

#[test]
fn scale_up_during_a_partitioned_update_creates_old_pods_first() {
    let pods = [pod("gd-a", "r2"), pod("gd-b", "r1")];
    let costs = BTreeMap::new();
    let pods: Vec<&PodView> = pods.iter().collect();
    let mut i = input(&pods, 5, &costs);
    i.partition = 3;
    i.current_revision = "r1";
    let p = replica_diff(&i, &mut suffixes(&["c", "d", "e"]));
    let revs: Vec<&str> = p.create.iter().map(|c| c.revision.as_str()).collect();
    assert_eq!(revs, ["r1", "r1", "r2"]);
}

#[test]
fn scale_down_removes_old_revisions_first_then_by_cost() {
    let mut pods = [
        pod("gd-new1", "r2"),
        pod("gd-old1", "r1"),
        pod("gd-new2", "r2"),
        pod("gd-new3", "r2"),
    ];
    pods[2]
        .annotations
        .insert(names::ANNOTATION_POD_DELETION_COST.into(), "-5".into());
    pods[3]
        .annotations
        .insert(names::ANNOTATION_POD_DELETION_COST.into(), "10".into());
    let costs = BTreeMap::new();
    let pods: Vec<&PodView> = pods.iter().collect();
    let p = replica_diff(&input(&pods, 1, &costs), &mut suffixes(&[]));
    assert_eq!(p.delete, ["gd-old1", "gd-new2", "gd-new3"]);
    let mut desc = input(&pods, 2, &costs);
    desc.cost_descending = true;
    assert_eq!(
        replica_diff(&desc, &mut suffixes(&[])).delete,
        ["gd-old1", "gd-new3"]
    );
}

#[test]
fn scale_down_takes_pods_on_the_cheapest_node_first_and_unknown_nodes_last() {
    let on = |name: &str, node: &str| PodView {
        node_name: Some(node.into()),
        ..pod(name, "r2")
    };
    let pods = [
        on("gd-plain", "plain"),
        on("gd-dear", "dear"),
        on("gd-cheap", "cheap"),
        on("gd-negative", "negative"),
    ];
    let costs: BTreeMap<String, i64> = [("dear", 100), ("cheap", 1), ("negative", -3)]
        .map(|(n, c)| (n.to_string(), c))
        .into();
    let pods: Vec<&PodView> = pods.iter().collect();
    let p = replica_diff(&input(&pods, 1, &costs), &mut suffixes(&[]));
    assert_eq!(p.delete, ["gd-negative", "gd-cheap", "gd-dear"]);
}

#[test]
fn node_costs_are_integers_or_reported() {
    let with = |v: &str| -> BTreeMap<String, String> {
        [(
            names::ANNOTATION_NODE_DELETION_COST.to_string(),
            v.to_string(),
        )]
        .into()
    };
    assert_eq!(node_cost(None), Ok(None));
    assert_eq!(node_cost(Some(&BTreeMap::new())), Ok(None));
    assert_eq!(node_cost(Some(&with(" -7 "))), Ok(Some(-7)));
    let err = node_cost(Some(&with("cheap"))).unwrap_err();
    assert_eq!(err.value, "cheap");
    assert!(
        err.to_string()
            .contains(names::ANNOTATION_NODE_DELETION_COST)
    );
}

#[test]
fn pods_to_delete_go_first_and_are_replaced() {
    let pods = [pod("gd-a", "r2"), pod("gd-b", "r2")];
    let costs = BTreeMap::new();
    let pods: Vec<&PodView> = pods.iter().collect();
    let mut i = input(&pods, 2, &costs);
    let doomed = vec!["gd-b".to_string(), "gd-not-mine".to_string()];
    i.pods_to_delete = &doomed;
    let p = replica_diff(&i, &mut suffixes(&["c"]));
    assert_eq!(p.delete, ["gd-b"]);
    assert_eq!(p.create.len(), 1);
}

#[test]
fn surge_only_while_updating_and_capped_by_old_pods() {
    let pods = [pod("gd-a", "r1"), pod("gd-b", "r2")];
    let costs = BTreeMap::new();
    let pods: Vec<&PodView> = pods.iter().collect();
    let mut i = input(&pods, 2, &costs);
    i.current_revision = "r1";
    i.max_surge = 5;
    assert_eq!(
        replica_diff(&i, &mut suffixes(&["c"])).create.len(),
        1,
        "surge capped at 1 old pod"
    );
    i.current_revision = "r2";
    assert!(replica_diff(&i, &mut suffixes(&[])).create.is_empty());
}

/// maxSurge 2, 8 replicas: once all 8 new pods exist, the 2 old surge-era pods are surplus.
#[test]
fn surge_ends_when_enough_pods_run_the_update_revision() {
    let mut pods: Vec<PodView> = (0..8).map(|i| pod(&format!("gd-new{i}"), "r2")).collect();
    pods.push(pod("gd-old1", "r1"));
    pods.push(pod("gd-old2", "r1"));
    let costs = BTreeMap::new();
    let pods: Vec<&PodView> = pods.iter().collect();
    let mut i = input(&pods, 8, &costs);
    i.current_revision = "r1";
    i.max_surge = 2;
    let p = replica_diff(&i, &mut suffixes(&[]));
    assert_eq!(
        (p.create.len(), p.delete),
        (0, vec!["gd-old1".to_string(), "gd-old2".into()])
    );
    // The partition does not shield surplus pods: scale-down takes old revisions first.
    i.partition = 2;
    let p = replica_diff(&i, &mut suffixes(&[]));
    assert_eq!(
        p.delete,
        ["gd-old1", "gd-old2"],
        "8 replicas: still two too many"
    );
    i.replicas = 10;
    assert_eq!(replica_diff(&i, &mut suffixes(&[])), ReplicaDiff::default());
    // A new pod that is not ready yet still needs its surge slot: no old pod goes.
    let mut not_ready = pods[7].clone();
    not_ready.ready = false;
    let mut starting = pods.clone();
    starting[7] = &not_ready;
    let i = ReplicaInput {
        pods: &starting,
        replicas: 8,
        partition: 0,
        ..i
    };
    assert_eq!(replica_diff(&i, &mut suffixes(&[])).delete, ["gd-old1"]);
}

/// `createBatch: 3` of 8: three pods, then more only as pods become Ready, never more than
/// three not Ready at once.
#[test]
fn create_batch_creates_in_waves_judged_on_readiness() {
    let costs = BTreeMap::new();
    let created = |pods: &[PodView], batch: Option<i32>| {
        let pods: Vec<&PodView> = pods.iter().collect();
        let mut i = input(&pods, 8, &costs);
        i.create_batch = batch;
        let mut n = 0u32;
        replica_diff(&i, &mut || {
            n += 1;
            format!("p{n}")
        })
        .create
        .len()
    };
    assert_eq!(created(&[], Some(3)), 3, "the first wave");
    let mut wave: Vec<PodView> = ["gd-a", "gd-b", "gd-c"]
        .iter()
        .map(|n| PodView {
            ready: false,
            ..pod(n, "r2")
        })
        .collect();
    assert_eq!(created(&wave, Some(3)), 0, "the wave is not Ready");
    wave[0].ready = true;
    assert_eq!(created(&wave, Some(3)), 1, "one of three is Ready");
    for p in &mut wave {
        p.ready = true;
    }
    assert_eq!(created(&wave, Some(3)), 3, "the next wave");
    assert_eq!(created(&wave, None), 5, "unset: all at once");
}

#[test]
fn batches_double() {
    assert_eq!(slow_start_batches(0), Vec::<usize>::new());
    assert_eq!(slow_start_batches(8), [1, 2, 4, 1]);
}
