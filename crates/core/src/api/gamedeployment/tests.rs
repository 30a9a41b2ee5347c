use super::*;

fn with_strategy(u: UpdateStrategy) -> GameDeploymentSpec {
    GameDeploymentSpec {
        update_strategy: Some(u),
        ..Default::default()
    }
}

fn s(v: &str) -> IntOrString {
    IntOrString::String(v.to_owned())
}

#[test]
fn unset_fields_read_as_the_schema_defaults() {
    let spec = GameDeploymentSpec::default();
    assert_eq!(spec.replicas(), 1);
    assert_eq!(
        spec.update_strategy_type(),
        UpdateStrategyType::RollingUpdate
    );
    assert_eq!(spec.partition(8).unwrap(), 0);
    assert_eq!(spec.max_surge(8).unwrap(), 0);
    // 20% of 8 = 1.6, rounded up because maxSurge is 0.
    assert_eq!(spec.max_unavailable(8).unwrap(), 2);
    assert_eq!(spec.grace_period_seconds(), 0);
    assert_eq!(spec.deadline_seconds(), None);
    assert_eq!(spec.revision_history_limit(), 10);
    assert_eq!(spec.min_ready_seconds(), 0);
    assert!(!spec.paused());
    assert!(spec.canary_steps().is_empty());
}

#[test]
fn set_fields_win_over_defaults() {
    let spec = GameDeploymentSpec {
        replicas: Some(8),
        revision_history_limit: Some(3),
        min_ready_seconds: Some(5),
        ..with_strategy(UpdateStrategy {
            type_: Some(UpdateStrategyType::InplaceUpdate),
            partition: Some(IntOrString::Int(3)),
            paused: true,
            in_place_update_strategy: Some(InPlaceUpdateStrategy {
                grace_period_seconds: Some(30),
                deadline_seconds: Some(600),
                policy: None,
                infeasible_resize_policy: None,
            }),
            canary: Some(CanaryStrategy {
                steps: vec![CanaryStep {
                    partition: Some(IntOrString::Int(4)),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        })
    };
    assert_eq!(spec.replicas(), 8);
    assert_eq!(
        spec.update_strategy_type(),
        UpdateStrategyType::InplaceUpdate
    );
    assert_eq!(spec.partition(8).unwrap(), 3);
    assert_eq!(spec.grace_period_seconds(), 30);
    assert_eq!(spec.deadline_seconds(), Some(600));
    assert_eq!(spec.revision_history_limit(), 3);
    assert_eq!(spec.min_ready_seconds(), 5);
    assert!(spec.paused());
    assert_eq!(spec.canary_steps().len(), 1);
}

#[test]
fn percentages_round_up_except_max_unavailable_with_surge() {
    let spec = with_strategy(UpdateStrategy {
        partition: Some(s("25%")),
        max_unavailable: Some(s("25%")),
        max_surge: Some(s("10%")),
        ..Default::default()
    });
    // 25% of 10 = 2.5 → 3; 10% of 10 = 1; maxUnavailable rounds down to 2 because surge > 0.
    assert_eq!(spec.partition(10).unwrap(), 3);
    assert_eq!(spec.max_surge(10).unwrap(), 1);
    assert_eq!(spec.max_unavailable(10).unwrap(), 2);

    let no_surge = with_strategy(UpdateStrategy {
        max_unavailable: Some(s("25%")),
        ..Default::default()
    });
    assert_eq!(no_surge.max_unavailable(10).unwrap(), 3);
    assert_eq!(no_surge.max_unavailable(0).unwrap(), 0);
}

#[test]
fn malformed_budgets_name_the_field_and_the_fix() {
    for (value, field) in [
        (s("20"), "updateStrategy.maxUnavailable"),
        (s("%"), "updateStrategy.maxUnavailable"),
        (s("-5%"), "updateStrategy.maxUnavailable"),
        (s("abc%"), "updateStrategy.maxUnavailable"),
        (IntOrString::Int(-1), "updateStrategy.maxUnavailable"),
        (s("99999999999999999999%"), "updateStrategy.maxUnavailable"),
        (s("922337203685477580%"), "updateStrategy.maxUnavailable"),
    ] {
        let spec = with_strategy(UpdateStrategy {
            max_unavailable: Some(value.clone()),
            ..Default::default()
        });
        let err = spec.max_unavailable(10).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(field), "{msg}");
        assert!(msg.contains("percentage"), "{msg}");
        assert!(
            matches!(err, InvalidIntOrPercent { field: f, .. } if f == field),
            "{value:?}"
        );
    }
    let bad_partition = with_strategy(UpdateStrategy {
        partition: Some(s("1e3%")),
        ..Default::default()
    });
    assert!(bad_partition.partition(4).is_err());
}

#[test]
fn spec_serializes_with_the_original_json_names() {
    let spec = GameDeploymentSpec {
        replicas: Some(2),
        scale_strategy: Some(ScaleStrategy {
            pods_to_delete: vec!["a".into()],
            create_batch: None,
        }),
        pre_delete_update_strategy: Some(HookUpdateStrategy {
            hook: None,
            retry: true,
        }),
        ..with_strategy(UpdateStrategy {
            type_: Some(UpdateStrategyType::HotPatchUpdate),
            max_surge: Some(IntOrString::Int(1)),
            in_place_update_strategy: Some(InPlaceUpdateStrategy {
                grace_period_seconds: Some(1),
                deadline_seconds: None,
                policy: None,
                infeasible_resize_policy: None,
            }),
            ..Default::default()
        })
    };
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["scaleStrategy"]["podsToDelete"][0], "a");
    assert_eq!(json["updateStrategy"]["type"], "HotPatchUpdate");
    assert_eq!(json["updateStrategy"]["maxSurge"], 1);
    assert_eq!(
        json["updateStrategy"]["inPlaceUpdateStrategy"]["gracePeriodSeconds"],
        1
    );
    assert_eq!(json["preDeleteUpdateStrategy"]["retry"], true);
    let back: GameDeploymentSpec = serde_json::from_value(json).unwrap();
    assert_eq!(back, spec);
}

/// A manifest written against the newer API (kourse `pkg/apis/tkex/v1alpha1`) reads with its
/// JSON names, and a field left unset serializes as before.
#[test]
fn the_newer_api_fields_read_with_their_json_names() {
    let spec: GameDeploymentSpec = serde_json::from_value(serde_json::json!({
        "selector": {"matchLabels": {"app": "a"}},
        "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}},
        "replicas": 10,
        "disableReadinessGate": true,
        "scaleStrategy": {"createBatch": "30%"},
        "updateStrategy": {"type": "OnDelete", "partition": "50%",
                           "canary": {"steps": [{"partition": "80%"}, {"partition": 2}]}}
    }))
    .unwrap();
    assert!(spec.disable_readiness_gate);
    assert_eq!(spec.update_strategy_type(), UpdateStrategyType::OnDelete);
    assert_eq!(spec.create_batch(10).unwrap(), Some(3));
    assert_eq!(spec.partition(10).unwrap(), 5);
    let steps = spec.canary_steps();
    assert_eq!(steps[0].partition_for(10).unwrap().unwrap(), 8);
    assert_eq!(steps[1].partition_for(10).unwrap().unwrap(), 2);
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["updateStrategy"]["canary"]["steps"][1]["partition"], 2);
    assert_eq!(json["scaleStrategy"]["createBatch"], "30%");
    let plain = seed_example().spec;
    let json = serde_json::to_value(&plain).unwrap();
    assert!(json.get("disableReadinessGate").is_none());
    assert_eq!(plain.create_batch(8).unwrap(), None);
}

/// Percentage partitions round as OpenKruise CloneSet's `CalculatePartitionReplicas`: up, but
/// below 100% at least one of several pods goes through; integers stay as written.
#[test]
fn percentage_partitions_round_as_clonesets() {
    let at = |p: IntOrString, replicas: i32| {
        with_strategy(UpdateStrategy {
            partition: Some(p),
            ..Default::default()
        })
        .partition(replicas)
        .unwrap()
    };
    assert_eq!(at(s("1%"), 10), 1, "above 0% keeps one back");
    assert_eq!(at(s("0%"), 10), 0);
    assert_eq!(at(s("99%"), 10), 9, "below 100% lets one through");
    assert_eq!(at(s("100%"), 10), 10);
    assert_eq!(at(s("150%"), 10), 10, "never more than replicas");
    assert_eq!(at(s("50%"), 1), 1, "one pod: rounded up, kept");
    assert_eq!(at(IntOrString::Int(12), 10), 12, "an integer as written");
}

#[test]
fn status_reads_an_object_written_by_the_original_operator() {
    let status: GameDeploymentStatus = serde_json::from_value(serde_json::json!({
        "observedGeneration": 4,
        "replicas": 8, "readyReplicas": 7, "availableReplicas": 7,
        "updatedReplicas": 5, "updatedReadyReplicas": 4,
        "updateRevision": "test-gamedeployment-7d9f", "collisionCount": 0,
        "labelSelector": "app=test-gamedeployment",
        "currentStepIndex": 1, "currentStepHash": "3b1f",
        "canary": {"revision": "test-gamedeployment-5c6b", "currentStepHookRun": "canary-x-1-t"},
        "pauseConditions": [{"reason": "PausedByCanaryPauseStep", "startTime": "2024-05-01T10:00:00Z"}],
        "preDeleteHookCondition": [{"podName": "p-abcde", "startTime": "2024-05-01T10:00:00Z", "phase": "Running"}],
        "conditions": [{"type": "FailedUpdate", "status": "True", "reason": "x", "message": "y"}]
    }))
    .unwrap();
    assert_eq!(status.updated_ready_replicas, 4);
    assert_eq!(
        status.pause_conditions[0].reason,
        PauseReason::PausedByCanaryPauseStep
    );
    assert_eq!(
        status.pre_delete_hook_condition[0].phase,
        HookPhase::Running
    );
    assert_eq!(status.canary.unwrap().current_step_hook_run, "canary-x-1-t");
    assert_eq!(status.conditions[0].type_, "FailedUpdate");
}

#[test]
fn a_progress_deadline_is_exceeded_only_while_progressing_is_false_for_that_reason() {
    let c = |status: &str, reason: &str| GameDeploymentCondition {
        type_: crate::names::CONDITION_PROGRESSING.into(),
        status: status.into(),
        reason: reason.into(),
        ..Default::default()
    };
    let reason = crate::names::REASON_PROGRESS_DEADLINE_EXCEEDED;
    assert!(c("False", reason).is_progress_deadline_exceeded());
    assert!(!c("True", reason).is_progress_deadline_exceeded());
    assert!(!c("False", "Updating").is_progress_deadline_exceeded());
    let failed = GameDeploymentCondition {
        type_: crate::names::CONDITION_FAILED_UPDATE.into(),
        ..c("False", reason)
    };
    assert!(!failed.is_progress_deadline_exceeded());
}
