use super::*;

fn moved(pre_inplace: &[(String, HookPhase)], pre_delete: &[(String, HookPhase)]) -> bool {
    let none = SortedPods::new(&[]);
    let post = [("p".to_string(), HookPhase::Running)];
    pods_moved(
        &none,
        &[],
        "r2",
        &HookWaits {
            pre_inplace,
            pre_delete,
            post_inplace: &post,
        },
    )
}

#[test]
fn a_hook_wait_is_progress_while_its_hook_run_runs_and_not_once_it_failed() {
    let on = |phase| [("p".to_string(), phase)];
    for phase in [HookPhase::Pending, HookPhase::Running] {
        assert!(moved(&on(phase), &[]), "preInplace {phase:?}");
        assert!(moved(&[], &on(phase)), "preDelete {phase:?}");
    }
    for phase in [
        HookPhase::Failed,
        HookPhase::Error,
        HookPhase::Inconclusive,
        HookPhase::Terminated,
        HookPhase::Successful,
    ] {
        assert!(!moved(&on(phase), &on(phase)), "{phase:?}");
    }
    assert!(
        !moved(&[], &[]),
        "a running postInplace hook gates nothing, so it is no progress"
    );
}
