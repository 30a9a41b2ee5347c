//! Has kubelet finished replacing the changed containers? Decided from what kubelet reports,
//! per container, against the snapshot taken when the images were patched.
//!
//! The anchors (the Go original and OpenKruise) wait for the `imageID` to change, so a new tag
//! that resolves to the same digest never completes. Here the evidence is a *new container
//! instance*: a different `containerID` (kubelet restarts a container whenever its spec image
//! string changes, same digest or not), running and ready. The snapshot comes from the pod
//! version the patch was preconditioned on, so an instance that differs from it was started
//! after that version; kubelet starts instances from the newest spec it has.

use super::observe::ContainerView;
use super::record::ContainerSnapshot;

/// Waiting reasons that mean the image will not arrive without a change: `ErrImagePull` alone
/// is retried by kubelet and is not final, `ImagePullBackOff` is the retry failing again.
const PULL_FAILURES: &[&str] = &["ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"];

/// Where one changed container stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Kubelet has not touched it yet.
    Untouched,
    /// Being replaced, or the new instance is not ready yet.
    Restarting,
    /// A new instance runs and is ready.
    Done,
    /// It will not get there on its own.
    Failed {
        trigger: RestartFailure,
        detail: String,
    },
}

/// Why a container failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartFailure {
    ImagePull,
    CrashLoop,
}

/// Progress of one changed container.
pub fn progress(before: &ContainerSnapshot, now: Option<&ContainerView>) -> Progress {
    let Some(now) = now else {
        // Kubelet drops and re-adds a status while it recreates a container.
        return Progress::Restarting;
    };
    if let Some(reason) = now.waiting_reason.as_deref() {
        if PULL_FAILURES.contains(&reason) {
            return Progress::Failed {
                trigger: RestartFailure::ImagePull,
                detail: format!("image {} cannot be pulled: {reason}", now.image),
            };
        }
        if reason == "CrashLoopBackOff" && now.restart_count > before.restart_count {
            return Progress::Failed {
                trigger: RestartFailure::CrashLoop,
                detail: format!(
                    "container crash-loops on the new image (restartCount {})",
                    now.restart_count
                ),
            };
        }
    }
    let new_instance = is_new_instance(before, now);
    if new_instance && now.running && now.ready {
        Progress::Done
    } else if !new_instance && now.running && now.waiting_reason.is_none() {
        Progress::Untouched
    } else {
        Progress::Restarting
    }
}

/// Whether `now` is an instance started after the snapshot `before` was taken.
fn is_new_instance(before: &ContainerSnapshot, now: &ContainerView) -> bool {
    match (&before.container_id, &before.image_id) {
        (Some(old), _) => now.container_id.as_ref().is_some_and(|id| id != old),
        // Records migrated from the Go operator carry only the old digest.
        (None, Some(old_digest)) => now.image_id.as_ref().is_some_and(|d| d != old_digest),
        // The container had no status when patched: any running instance is new.
        (None, None) => now.container_id.is_some(),
    }
}

/// A new instance of the container has started and is running, ready or not: the bar of
/// `OrderedUpdated` before the next container is patched.
pub fn runs_new_instance(before: &ContainerSnapshot, now: Option<&ContainerView>) -> bool {
    now.is_some_and(|now| now.running && is_new_instance(before, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str) -> ContainerSnapshot {
        ContainerSnapshot {
            container_id: Some(id.into()),
            image_id: Some("sha256:old".into()),
            restart_count: 0,
        }
    }

    fn running(id: &str, image_id: &str, ready: bool) -> ContainerView {
        ContainerView {
            image: "python:latest".into(),
            image_id: Some(image_id.into()),
            container_id: Some(id.into()),
            restart_count: 1,
            ready,
            running: true,
            started_at: Some("2026-01-01T00:01:00Z".parse().unwrap()),
            waiting_reason: None,
            resources: None,
        }
    }

    #[test]
    fn a_started_new_instance_runs_the_new_image_before_it_is_ready() {
        let started = running("c2", "sha256:new", false);
        assert!(runs_new_instance(&snap("c1"), Some(&started)));
        assert!(!runs_new_instance(
            &snap("c1"),
            Some(&running("c1", "sha256:old", true))
        ));
        let mut waiting = started.clone();
        waiting.running = false;
        waiting.waiting_reason = Some("ContainerCreating".into());
        assert!(!runs_new_instance(&snap("c1"), Some(&waiting)));
        assert!(!runs_new_instance(&snap("c1"), None));
    }

    #[test]
    fn same_container_is_untouched() {
        let c = running("c1", "sha256:old", true);
        assert_eq!(progress(&snap("c1"), Some(&c)), Progress::Untouched);
    }

    #[test]
    fn new_ready_instance_is_done_even_with_the_same_digest() {
        let c = running("c2", "sha256:old", true);
        assert_eq!(progress(&snap("c1"), Some(&c)), Progress::Done);
    }

    #[test]
    fn new_instance_not_ready_is_restarting() {
        let c = running("c2", "sha256:new", false);
        assert_eq!(progress(&snap("c1"), Some(&c)), Progress::Restarting);
    }

    #[test]
    fn missing_status_is_restarting() {
        assert_eq!(progress(&snap("c1"), None), Progress::Restarting);
    }

    #[test]
    fn pull_backoff_fails_but_first_pull_error_does_not() {
        let mut c = running("", "", false);
        c.running = false;
        c.container_id = None;
        c.waiting_reason = Some("ErrImagePull".into());
        assert_eq!(progress(&snap("c1"), Some(&c)), Progress::Restarting);
        c.waiting_reason = Some("ImagePullBackOff".into());
        assert!(matches!(
            progress(&snap("c1"), Some(&c)),
            Progress::Failed {
                trigger: RestartFailure::ImagePull,
                ..
            }
        ));
    }

    #[test]
    fn crash_loop_after_the_patch_fails() {
        let mut c = running("c2", "sha256:new", false);
        c.running = false;
        c.waiting_reason = Some("CrashLoopBackOff".into());
        c.restart_count = 3;
        assert!(matches!(
            progress(&snap("c1"), Some(&c)),
            Progress::Failed {
                trigger: RestartFailure::CrashLoop,
                ..
            }
        ));
    }

    #[test]
    fn legacy_snapshot_uses_the_digest() {
        let before = ContainerSnapshot {
            container_id: None,
            image_id: Some("sha256:old".into()),
            restart_count: 0,
        };
        assert_eq!(
            progress(&before, Some(&running("c1", "sha256:old", true))),
            Progress::Untouched
        );
        assert_eq!(
            progress(&before, Some(&running("c1", "sha256:new", true))),
            Progress::Done
        );
    }
}
