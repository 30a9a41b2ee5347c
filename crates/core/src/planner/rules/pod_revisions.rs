//! Which revisions the pods are on, each named once: what the revisions phase prunes around
//! and what `status.currentRevision` is. A GameDeployment's 10,000 pods are on a revision or
//! two, so one pass with a short list replaces a set of 10,000 names and a scan of every pod
//! per stored revision.

use crate::inplace::PodView;

/// The revisions pods are on, each once, in the order first met.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRevisions<'a> {
    /// Of every pod, those being deleted included (a revision they use is not pruned).
    pub any: Vec<&'a str>,
    /// Of the pods not being deleted.
    pub live: Vec<&'a str>,
}

impl<'a> PodRevisions<'a> {
    /// One pass over `pods`.
    pub fn of(pods: &[&'a PodView]) -> Self {
        let mut out = PodRevisions::default();
        // Neighbours share a revision: most pods are settled by comparing with the last one.
        let mut last: Option<(&str, bool)> = None;
        for p in pods {
            let Some(r) = p.revision.as_deref() else {
                continue;
            };
            if last == Some((r, p.deleting)) {
                continue;
            }
            last = Some((r, p.deleting));
            if !out.any.contains(&r) {
                out.any.push(r);
            }
            if !p.deleting && !out.live.contains(&r) {
                out.live.push(r);
            }
        }
        out
    }

    /// The first of `order` (revision names, oldest first) a live pod is on.
    pub fn oldest_live<'o>(&self, order: &'o [String]) -> Option<&'o String> {
        order.iter().find(|r| self.live.contains(&r.as_str()))
    }

    /// `status.currentRevision`: [`PodRevisions::oldest_live`], or `update` when no live pod
    /// is on a revision of `order`.
    pub fn current(&self, order: &[String], update: &str) -> String {
        self.oldest_live(order)
            .map_or_else(|| update.to_string(), Clone::clone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, revision: Option<&str>, deleting: bool) -> PodView {
        PodView {
            name: name.into(),
            revision: revision.map(Into::into),
            deleting,
            ..Default::default()
        }
    }

    /// The sets the revisions phase and the status built before, pod by pod.
    fn by_scan<'a>(pods: &[&'a PodView]) -> (Vec<&'a str>, Vec<&'a str>) {
        let mut any: Vec<&str> = pods.iter().filter_map(|p| p.revision.as_deref()).collect();
        let mut live: Vec<&str> = (pods.iter().filter(|p| !p.deleting))
            .filter_map(|p| p.revision.as_deref())
            .collect();
        for v in [&mut any, &mut live] {
            v.sort_unstable();
            v.dedup();
        }
        (any, live)
    }

    #[test]
    fn each_revision_once_as_a_scan_of_every_pod_finds_them() {
        let revisions = [None, Some("r1"), Some("r2"), Some("r3")];
        // A deterministic mix: runs of one revision, deleting pods, pods without a label.
        let pods: Vec<PodView> = (0..500u32)
            .map(|i| {
                let r = revisions[((i / 7) ^ (i % 3)) as usize % revisions.len()];
                pod(
                    &format!("p{i}"),
                    r,
                    i % 11 == 0 || (i > 300 && r == Some("r3")),
                )
            })
            .collect();
        let refs: Vec<&PodView> = pods.iter().collect();
        let found = PodRevisions::of(&refs);
        let (mut any, mut live) = (found.any.clone(), found.live.clone());
        any.sort_unstable();
        live.sort_unstable();
        assert_eq!((any, live), by_scan(&refs));
        let order: Vec<String> = ["r0", "r1", "r2", "r3"].map(String::from).to_vec();
        let oldest = order.iter().find(|r| {
            refs.iter()
                .any(|p| !p.deleting && p.revision.as_deref() == Some(r.as_str()))
        });
        assert_eq!(found.oldest_live(&order), oldest);
    }

    #[test]
    fn a_revision_only_deleting_pods_use_is_in_use_but_not_live() {
        let pods = [pod("a", Some("r1"), true), pod("b", Some("r2"), false)];
        let refs: Vec<&PodView> = pods.iter().collect();
        let found = PodRevisions::of(&refs);
        assert_eq!(found.any, ["r1", "r2"]);
        assert_eq!(found.live, ["r2"]);
        let order = vec!["r1".to_string(), "r2".to_string()];
        assert_eq!(found.oldest_live(&order).map(String::as_str), Some("r2"));
    }
}
