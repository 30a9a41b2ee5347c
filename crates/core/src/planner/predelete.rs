//! The preDelete hook gate (`preDeleteUpdateStrategy`), as the original's `CheckDelete`: a
//! running pod is deleted (scale-down, `podsToDelete`, a recreate) only once its HookRun has
//! succeeded, so a game server can drain its players first. Until then the pod is marked with
//! the original's annotation and keeps serving; an unsuccessful hook holds it for good, and
//! the status says so.

use std::collections::BTreeMap;

use super::hooks::HookRunView;
use crate::inplace::{HookKind, HookPhase, HookRunRequest, PodView, pod_hook_args};
use crate::names;

/// What to do with one pod the plan wants to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No hook applies, or it succeeded.
    Delete,
    /// Keep the pod for now.
    Wait {
        /// The HookRun to create (it does not exist yet).
        create: Option<HookRunRequest>,
        /// The pod lacks [`names::ANNOTATION_POD_DELETING`].
        mark: bool,
        /// Why the pod will never go without the user's help (a completed, failed hook).
        stuck: Option<String>,
    },
}

/// The HookRun name the original uses for a pod's preDelete hook.
pub fn hook_run_name(pod: &PodView, template: &str) -> String {
    format!(
        "predelete-{}-{}-{template}",
        pod.revision.as_deref().unwrap_or_default(),
        pod.instance_id()
    )
}

/// Decides whether `pod` may be deleted now, given the hook template configured (if any) and
/// the phases of this GameDeployment's HookRuns by name.
pub fn check(
    pod: &PodView,
    template: Option<&str>,
    hook_runs: &BTreeMap<String, HookRunView>,
) -> Verdict {
    let Some(template) = template else {
        return Verdict::Delete;
    };
    // As in the original: a pod that is not running has nothing to drain.
    if pod.phase.as_deref() != Some("Running") {
        return Verdict::Delete;
    }
    let name = hook_run_name(pod, template);
    let mark = !pod.annotations.contains_key(names::ANNOTATION_POD_DELETING);
    match hook_runs.get(&name).map(|r| r.phase) {
        Some(Some(HookPhase::Successful)) => Verdict::Delete,
        Some(Some(phase)) if phase.is_completed() => Verdict::Wait {
            create: None,
            mark,
            stuck: Some(format!(
                "pod {}: preDeleteUpdateStrategy HookRun {name} is {phase}; the pod is kept \
                 (delete the HookRun to run the hook again, or delete the pod yourself)",
                pod.name
            )),
        },
        Some(_) => Verdict::Wait {
            create: None,
            mark,
            stuck: None,
        },
        None => Verdict::Wait {
            create: Some(HookRunRequest {
                name,
                template: template.to_string(),
                args: pod_hook_args(pod),
                kind: HookKind::PreDelete,
            }),
            mark,
            stuck: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> PodView {
        PodView {
            name: "gd-abcde".into(),
            namespace: "default".into(),
            revision: Some("r1".into()),
            phase: Some("Running".into()),
            ready: true,
            ..Default::default()
        }
    }

    #[test]
    fn without_a_hook_or_a_running_pod_deletion_goes_ahead() {
        let runs = BTreeMap::new();
        assert_eq!(check(&pod(), None, &runs), Verdict::Delete);
        let pending = PodView {
            phase: Some("Pending".into()),
            ..pod()
        };
        assert_eq!(check(&pending, Some("drain"), &runs), Verdict::Delete);
    }

    #[test]
    fn a_running_pod_waits_for_its_hook_run_which_is_created_once() {
        let mut runs = BTreeMap::new();
        let Verdict::Wait {
            create: Some(req),
            mark: true,
            stuck: None,
        } = check(&pod(), Some("drain"), &runs)
        else {
            panic!("expected a HookRun request");
        };
        assert_eq!(req.name, "predelete-r1-abcde-drain");
        assert_eq!(req.kind, HookKind::PreDelete);
        assert_eq!(req.args["PodName"], "gd-abcde");

        let run = |phase| HookRunView {
            phase: Some(phase),
            ..Default::default()
        };
        runs.insert(req.name.clone(), HookRunView::default());
        assert!(
            matches!(
                check(&pod(), Some("drain"), &runs),
                Verdict::Wait { create: None, .. }
            ),
            "created but not yet evaluated: wait, do not ask again"
        );
        runs.insert(req.name.clone(), run(HookPhase::Running));
        let mut marked = pod();
        marked
            .annotations
            .insert(names::ANNOTATION_POD_DELETING.into(), "true".into());
        assert_eq!(
            check(&marked, Some("drain"), &runs),
            Verdict::Wait {
                create: None,
                mark: false,
                stuck: None
            }
        );
        runs.insert(req.name.clone(), run(HookPhase::Successful));
        assert_eq!(check(&marked, Some("drain"), &runs), Verdict::Delete);
    }

    #[test]
    fn a_failed_hook_keeps_the_pod_and_says_how_to_go_on() {
        let failed = HookRunView {
            phase: Some(HookPhase::Failed),
            ..Default::default()
        };
        let runs = [("predelete-r1-abcde-drain".to_string(), failed)].into();
        let Verdict::Wait {
            create: None,
            stuck: Some(why),
            ..
        } = check(&pod(), Some("drain"), &runs)
        else {
            panic!("expected the pod to be held");
        };
        assert!(
            why.contains("HookRun predelete-r1-abcde-drain is Failed"),
            "{why}"
        );
        assert!(why.contains("delete the HookRun"), "{why}");
    }
}
