//! The preDelete hook gate (`preDeleteUpdateStrategy`), as the original's `CheckDelete`: a
//! running pod is deleted (scale-down, `podsToDelete`, a recreate) only once its HookRun has
//! succeeded, so a game server can drain its players first. Until then the pod is marked with
//! the original's annotation and keeps serving; an unsuccessful hook holds it for good, and
//! the status says so.

use std::collections::BTreeMap;

use super::hooks::{self, HookRunView};
use crate::api::HookPhase;
use crate::inplace::{HookKind, HookRunRequest, PodView, pod_hook_args};
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
        /// The phase of the hook it waits on (`Pending` until one exists).
        phase: HookPhase,
    },
}

/// How the gate is configured (`preDeleteUpdateStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate<'a> {
    pub template: &'a str,
    /// With `retry: true`, the GameDeployment generation: an unsuccessful hook runs again as a
    /// new attempt, once in this generation (the attempt carries it as a label).
    pub retry_generation: Option<i64>,
}

/// The HookRun name the original uses for a pod's preDelete hook (its first attempt).
pub fn hook_run_name(pod: &PodView, template: &str) -> String {
    format!(
        "predelete-{}-{}-{template}",
        pod.revision.as_deref().unwrap_or_default(),
        pod.instance_id()
    )
}

/// Decides whether `pod` may be deleted now, given the gate configured (if any) and this
/// GameDeployment's HookRuns by name.
pub fn check(
    pod: &PodView,
    gate: Option<Gate>,
    hook_runs: &BTreeMap<String, HookRunView>,
) -> Verdict {
    let Some(gate) = gate else {
        return Verdict::Delete;
    };
    // As in the original: a pod that is not running has nothing to drain.
    if pod.phase.as_deref() != Some("Running") {
        return Verdict::Delete;
    }
    let base = hook_run_name(pod, gate.template);
    let mark = !pod.annotations.contains_key(names::ANNOTATION_POD_DELETING);
    let request = |name: String, retry_generation| HookRunRequest {
        name,
        template: gate.template.to_string(),
        args: pod_hook_args(pod),
        kind: HookKind::PreDelete,
        retry_generation,
    };
    let wait = |create, stuck, phase| Verdict::Wait {
        create,
        mark,
        stuck,
        phase,
    };
    let Some((attempt, name, run)) = hooks::latest_attempt(&base, hook_runs) else {
        return wait(Some(request(base, None)), None, HookPhase::Pending);
    };
    let phase = run.phase.unwrap_or(HookPhase::Pending);
    if phase == HookPhase::Successful {
        return Verdict::Delete;
    }
    if !phase.is_completed() {
        return wait(None, None, phase);
    }
    let retried_in = run.label(names::LABEL_HOOKRUN_RETRY_GENERATION);
    match gate.retry_generation {
        Some(g) if retried_in != Some(g.to_string().as_str()) => wait(
            Some(request(format!("{base}.{}", attempt + 1), Some(g))),
            None,
            HookPhase::Pending,
        ),
        _ => wait(
            None,
            Some(format!(
                "pod {}: preDeleteUpdateStrategy HookRun {name} is {phase}; the pod is kept \
                 (set preDeleteUpdateStrategy.retry to true to run the hook again, once per \
                 spec change; or delete the HookRun, or the pod yourself)",
                pod.name
            )),
            phase,
        ),
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

    fn drain() -> Option<Gate<'static>> {
        Some(Gate {
            template: "drain",
            retry_generation: None,
        })
    }

    #[test]
    fn without_a_hook_or_a_running_pod_deletion_goes_ahead() {
        let runs = BTreeMap::new();
        assert_eq!(check(&pod(), None, &runs), Verdict::Delete);
        let pending = PodView {
            phase: Some("Pending".into()),
            ..pod()
        };
        assert_eq!(check(&pending, drain(), &runs), Verdict::Delete);
    }

    #[test]
    fn a_running_pod_waits_for_its_hook_run_which_is_created_once() {
        let mut runs = BTreeMap::new();
        let Verdict::Wait {
            create: Some(req),
            mark: true,
            stuck: None,
            ..
        } = check(&pod(), drain(), &runs)
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
                check(&pod(), drain(), &runs),
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
            check(&marked, drain(), &runs),
            Verdict::Wait {
                create: None,
                mark: false,
                stuck: None,
                phase: HookPhase::Running,
            }
        );
        runs.insert(req.name.clone(), run(HookPhase::Successful));
        assert_eq!(check(&marked, drain(), &runs), Verdict::Delete);
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
        } = check(&pod(), drain(), &runs)
        else {
            panic!("expected the pod to be held");
        };
        assert!(
            why.contains("HookRun predelete-r1-abcde-drain is Failed"),
            "{why}"
        );
        assert!(why.contains("delete the HookRun"), "{why}");
        assert!(why.contains("preDeleteUpdateStrategy.retry"), "{why}");
    }

    #[test]
    fn retry_runs_a_failed_hook_again_once_per_generation() {
        let gate = |g| {
            Some(Gate {
                template: "drain",
                retry_generation: Some(g),
            })
        };
        let failed = |labels: &[(&str, &str)]| HookRunView {
            phase: Some(HookPhase::Failed),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        let mut runs: BTreeMap<String, HookRunView> =
            [("predelete-r1-abcde-drain".to_string(), failed(&[]))].into();
        let Verdict::Wait {
            create: Some(req),
            stuck: None,
            ..
        } = check(&pod(), gate(4), &runs)
        else {
            panic!("expected a second attempt");
        };
        assert_eq!(req.name, "predelete-r1-abcde-drain.1");
        assert_eq!(req.retry_generation, Some(4));
        runs.insert(
            req.name.clone(),
            failed(&[(names::LABEL_HOOKRUN_RETRY_GENERATION, "4")]),
        );
        let Verdict::Wait {
            create: None,
            stuck: Some(why),
            ..
        } = check(&pod(), gate(4), &runs)
        else {
            panic!("once per generation");
        };
        assert!(
            why.contains("HookRun predelete-r1-abcde-drain.1 is Failed"),
            "{why}"
        );
        let Verdict::Wait {
            create: Some(again),
            ..
        } = check(&pod(), gate(5), &runs)
        else {
            panic!("a new generation retries again");
        };
        assert_eq!(again.name, "predelete-r1-abcde-drain.2");
        runs.insert(
            again.name.clone(),
            HookRunView {
                phase: Some(HookPhase::Successful),
                ..Default::default()
            },
        );
        assert_eq!(check(&pod(), gate(5), &runs), Verdict::Delete);
    }
}
