//! The pods as every phase reads them: sorted by name, each with its decoded state annotation.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::cached_pod::CachedPod;
use crate::inplace::{Decoded, PodView};

/// The pods as every phase reads them: borrowed from the cache, where each pod's view and
/// decoded state annotation were derived once, when the watch delivered it (no per-reconcile
/// copies or JSON parsing).
pub(crate) struct SortedPods<'a> {
    /// Pod views sorted by name: caches hand pods out in no particular order, and the same
    /// world must give the same plan (writes, events and condition messages in the same order
    /// on every run).
    pub(crate) views: Vec<&'a PodView>,
    /// Each pod's decoded state annotation, index for index with `views`: the scheduler, the
    /// machine, the readiness gate, the status and the post hooks all read it.
    pub(crate) records: Vec<&'a Decoded>,
}

impl<'a> SortedPods<'a> {
    pub(crate) fn new(pods: &'a [Arc<CachedPod>]) -> Self {
        let sorted = in_name_order(pods);
        SortedPods {
            views: sorted.iter().map(|p| p.view()).collect(),
            records: sorted.iter().map(|p| p.decoded()).collect(),
        }
    }

    /// The pods (with their records) not in `deleting`, in order.
    pub(crate) fn remaining<'s>(
        &'s self,
        deleting: &'s BTreeSet<&str>,
    ) -> impl Iterator<Item = (&'a PodView, &'a Decoded)> + 's {
        self.views
            .iter()
            .zip(&self.records)
            .filter(|(p, _)| !deleting.contains(p.name.as_str()))
            .map(|(p, r)| (*p, *r))
    }
}

/// `pods` in name order. The operator's roster hands a reconcile its pods so (`Controlled`): a
/// look at neighbours is enough then. Other callers (tests) may pass any order.
pub fn in_name_order(pods: &[Arc<CachedPod>]) -> Vec<&CachedPod> {
    let mut sorted: Vec<&CachedPod> = pods.iter().map(|p| p.as_ref()).collect();
    if !sorted.is_sorted_by(|a, b| a.view().name <= b.view().name) {
        sort_by_name(&mut sorted, |p| &p.view().name);
    }
    sorted
}

/// The pod named `name` among `pods`, which are in name order ([`in_name_order`]).
pub fn pod_by_name<'a>(pods: &[&'a CachedPod], name: &str) -> Option<&'a CachedPod> {
    let at = pods.binary_search_by(|p| p.view().name.as_str().cmp(name));
    at.ok().map(|i| pods[i])
}

/// Sorts `items` by name, in `str` order. The names of one GameDeployment's pods share a long
/// prefix (its name), so string comparisons spent most of a 10,000-pod sort in `memcmp` over
/// it; this sorts on the first eight bytes after the common prefix as one number, worked out
/// once per item, and compares whole names only on a tie.
fn sort_by_name<T: Copy>(items: &mut [T], name: impl Fn(&T) -> &str) {
    let Some(first) = items.first().map(|t| name(t).as_bytes()) else {
        return;
    };
    let prefix = items.iter().fold(first.len(), |n, t| {
        let same = first[..n].iter().zip(name(t).as_bytes());
        same.take_while(|(a, b)| a == b).count()
    });
    // Zero-padded big-endian: numbers order as the bytes do (a shorter name pads with zeros,
    // which is where a tie, settled by the whole names, can hide).
    let key = |t: &T| {
        let rest = &name(t).as_bytes()[prefix..];
        let mut k = [0u8; 8];
        let n = rest.len().min(8);
        k[..n].copy_from_slice(&rest[..n]);
        u64::from_be_bytes(k)
    };
    let mut keyed: Vec<(u64, T)> = items.iter().map(|t| (key(t), *t)).collect();
    keyed.sort_unstable_by(|(ka, a), (kb, b)| ka.cmp(kb).then_with(|| name(a).cmp(name(b))));
    for (slot, (_, t)) in items.iter_mut().zip(keyed) {
        *slot = t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn pods_in_any_order_are_read_in_name_order() {
        let pod = |name: &str| {
            let mut p = Pod::default();
            p.metadata.name = Some(name.into());
            Arc::new(CachedPod::from(p))
        };
        let sorted: Vec<_> = ["gd-a", "gd-b", "gd-ba", "gd-c"].map(pod).into();
        let names = |pods: &[Arc<CachedPod>]| -> Vec<String> {
            let observed = SortedPods::new(pods);
            observed.views.iter().map(|v| v.name.clone()).collect()
        };
        assert_eq!(names(&sorted), ["gd-a", "gd-b", "gd-ba", "gd-c"]);
        for rotation in 1..sorted.len() {
            let mut shuffled = sorted.clone();
            shuffled.rotate_left(rotation);
            assert_eq!(names(&shuffled), names(&sorted), "rotated by {rotation}");
        }
    }

    #[test]
    fn names_sort_as_strings_do_with_shared_prefixes_ties_and_short_names() {
        // Every rotation of `names` sorts as `str` sorts.
        let sorts_as_strings = |mut names: Vec<&str>| {
            let mut expected = names.clone();
            expected.sort();
            for rotation in 0..names.len() {
                names.rotate_left(rotation);
                let mut got = names.clone();
                sort_by_name(&mut got, |n| n);
                assert_eq!(got, expected, "from rotation {rotation}");
            }
        };
        let shared = vec![
            "gd-zz",
            "gd-a",
            "gd-",
            "gd-abcdefgh1",
            "gd-abcdefgh0",
            "gd-abcdefgh",
            "gd-a\0",
            "gd-\u{e9}t\u{e9}",
            "gd-b",
            "gd-ab",
            "gd-Ab",
            "gd-abcdefghij",
        ];
        // All share "gd-": the keys start after it.
        sorts_as_strings(shared.clone());
        // With names that share nothing (or are empty), there is no prefix to skip.
        sorts_as_strings(shared.into_iter().chain(["g", "", "h-1"]).collect());
        let mut one_prefix: Vec<&str> = vec!["gd-c", "gd-abcdefgh", "gd-abcdefgh\0", "gd-b"];
        sort_by_name(&mut one_prefix, |n| n);
        assert_eq!(one_prefix, ["gd-abcdefgh", "gd-abcdefgh\0", "gd-b", "gd-c"]);
    }
}
