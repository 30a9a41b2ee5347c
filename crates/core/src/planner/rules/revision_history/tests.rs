use super::*;
use serde_json::json;

use crate::planner::testing::two_container_template as template;

#[test]
fn hashes_are_stable_safe_and_sensitive() {
    let h = revision_hash(&template("python:3.9"), None);
    assert_eq!(h, revision_hash(&template("python:3.9"), None));
    assert_ne!(h, revision_hash(&template("python:latest"), None));
    assert_ne!(h, revision_hash(&template("python:3.9"), Some(1)));
    assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)), "{h}");
    assert_eq!(
        revision_name("test-gamedeployment", &h),
        format!("test-gamedeployment-{h}")
    );
}

fn owner() -> Owner {
    Owner {
        name: "gd".into(),
        namespace: "default".into(),
        uid: "u1".into(),
    }
}

#[test]
fn a_new_template_gets_a_revision_and_an_old_one_is_reused() {
    let first = plan_revisions(
        &owner(),
        &template("python:3.9"),
        &[],
        None,
        &BTreeSet::new(),
        10,
    );
    let r1 = first.create.clone().expect("created");
    assert_eq!(r1.revision, 1);
    assert_eq!(revision_template(&r1).unwrap(), template("python:3.9"));
    let second = plan_revisions(
        &owner(),
        &template("python:latest"),
        std::slice::from_ref(&r1),
        None,
        &BTreeSet::new(),
        10,
    );
    let r2 = second.create.clone().expect("created");
    assert_eq!(r2.revision, 2);
    assert_eq!(second.order, [first.update.clone(), second.update.clone()]);
    // Rolling back to the first template reuses its revision.
    let back = plan_revisions(
        &owner(),
        &template("python:3.9"),
        &[r1, r2],
        None,
        &BTreeSet::new(),
        10,
    );
    assert!(back.create.is_none());
    assert_eq!(back.update, first.update);
}

#[test]
fn a_hash_collision_bumps_the_count() {
    let first = plan_revisions(
        &owner(),
        &template("python:3.9"),
        &[],
        None,
        &BTreeSet::new(),
        10,
    );
    let mut squatter = first.create.clone().unwrap();
    squatter.data = Some(RawExtension(revision_data(&json!({"other": true}))));
    let p = plan_revisions(
        &owner(),
        &template("python:3.9"),
        &[squatter],
        None,
        &BTreeSet::new(),
        10,
    );
    assert_eq!(p.collision_count, Some(1));
    assert_ne!(p.update, first.update);
}

#[test]
fn pruning_keeps_used_revisions_and_the_history_limit() {
    let mut revs = Vec::new();
    for i in 0..5 {
        let p = plan_revisions(
            &owner(),
            &template(&format!("img:{i}")),
            &revs,
            None,
            &BTreeSet::new(),
            10,
        );
        revs.push(p.create.unwrap());
    }
    let names: Vec<String> = revs
        .iter()
        .map(|r| r.metadata.name.clone().unwrap())
        .collect();
    let in_use: BTreeSet<&str> = [names[0].as_str()].into();
    let p = plan_revisions(&owner(), &template("img:4"), &revs, None, &in_use, 1);
    assert_eq!(p.update, names[4]);
    assert_eq!(
        p.prune,
        [names[1].clone(), names[2].clone()],
        "keeps used r0, update r4 and one more"
    );
}
