//! Finding a pod by name among the views `SortedPods` holds (sorted by name): a binary
//! search, so a reconcile that acts on one pod of 10,000 builds no index of all of them (a
//! hash map of every view cost more than the rest of such a plan).

use crate::inplace::PodView;

/// The index of the pod named `name` in `views`, which are sorted by name.
pub(crate) fn position_by_name(views: &[&PodView], name: &str) -> Option<usize> {
    views.binary_search_by(|v| v.name.as_str().cmp(name)).ok()
}

/// The pod named `name` in `views`, which are sorted by name.
pub(crate) fn find_by_name<'a>(views: &[&'a PodView], name: &str) -> Option<&'a PodView> {
    position_by_name(views, name).map(|i| views[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_a_scan_finds() {
        let mut names: Vec<String> = (0..300)
            .map(|i| format!("gd-{:x}", i * 7919 % 1000))
            .collect();
        names.push("gd-".into());
        names.push("gd-\u{e9}".into());
        names.sort();
        let views: Vec<PodView> = names
            .iter()
            .map(|n| PodView {
                name: n.clone(),
                ..Default::default()
            })
            .collect();
        let refs: Vec<&PodView> = views.iter().collect();
        for probe in names
            .iter()
            .map(String::as_str)
            .chain(["", "gd", "gd-zzz", "gd-1x"])
        {
            let scanned = refs.iter().position(|v| v.name == probe);
            assert_eq!(position_by_name(&refs, probe), scanned, "{probe}");
            assert_eq!(
                find_by_name(&refs, probe).map(|v| v.name.as_str()),
                scanned.map(|i| names[i].as_str())
            );
        }
    }
}
