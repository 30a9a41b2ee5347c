//! Deterministic identities the node hands out: image digests, container IDs and pod IPs. They
//! are derived by hashing, so the same scenario gives the same report byte for byte, and a
//! re-tag configured with `sameDigestAs` gets exactly the digest of its target.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::config::KubeletConfig;

/// 64 hex digits derived from `input` (four FNV-1a lanes finished with a SplitMix64 mix).
/// Not cryptographic; it only has to be stable and well spread.
pub fn hex_digest(input: &str) -> String {
    (0u64..4)
        .map(|lane| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ lane.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for b in input.as_bytes() {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            format!("{:016x}", mix(h))
        })
        .collect()
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The repository part of an image reference: no tag, no digest.
pub fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

/// `imageID` as kubelet reports it for a pulled image: the digest of the reference it
/// resolves to, so a re-tag reports the same `imageID` as the tag it copies.
pub fn image_id(config: &KubeletConfig, image: &str) -> String {
    let source = config.resolve_digest_source(image);
    format!(
        "docker-pullable://{}@sha256:{}",
        repository(source),
        hex_digest(source)
    )
}

/// `containerID` of the `instance`-th container created for one container of one pod.
pub fn container_id(pod_uid: &str, container: &str, instance: u32) -> String {
    format!(
        "containerd://{}",
        hex_digest(&format!("{pod_uid}/{container}/{instance}"))
    )
}

/// An address in 10.244.0.0/16 derived from the pod UID, moved on past addresses in use so
/// two pods on the node never share one. `None` only when all 65,534 are taken.
pub fn pod_ip(pod_uid: &str, in_use: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    const HOSTS: u64 = 65_534;
    let start = u64::from_str_radix(&hex_digest(pod_uid)[..16], 16).unwrap_or(0) % HOSTS;
    (0..HOSTS)
        .map(|i| {
            let host = u16::try_from((start + i) % HOSTS + 1).unwrap_or(1);
            let [hi, lo] = host.to_be_bytes();
            Ipv4Addr::new(10, 244, hi, lo)
        })
        .find(|ip| !in_use.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_stable_and_distinct() {
        let a = hex_digest("python:3.9");
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, hex_digest("python:3.9"));
        assert_ne!(a, hex_digest("python:3.8"));
    }

    #[test]
    fn repository_strips_tag_and_digest_but_not_a_registry_port() {
        assert_eq!(repository("python:3.9"), "python");
        assert_eq!(repository("registry:5000/game"), "registry:5000/game");
        assert_eq!(repository("registry:5000/game:v2"), "registry:5000/game");
        assert_eq!(repository("game@sha256:abc"), "game");
    }

    #[test]
    fn a_retag_has_the_digest_of_its_target() {
        let c: KubeletConfig =
            serde_saphyr::from_str("images: {\"python:retag\": {sameDigestAs: \"python:3.9\"}}")
                .unwrap();
        assert_eq!(image_id(&c, "python:retag"), image_id(&c, "python:3.9"));
        assert_ne!(image_id(&c, "python:latest"), image_id(&c, "python:3.9"));
        assert!(image_id(&c, "python:3.9").starts_with("docker-pullable://python@sha256:"));
    }

    #[test]
    fn container_ids_change_per_instance() {
        let a = container_id("uid-1", "python", 0);
        assert!(a.starts_with("containerd://"));
        assert_ne!(a, container_id("uid-1", "python", 1));
        assert_ne!(a, container_id("uid-2", "python", 0));
    }

    #[test]
    fn pod_ips_avoid_addresses_in_use() {
        let first = pod_ip("uid-1", &BTreeSet::new()).unwrap();
        assert_eq!(first, pod_ip("uid-1", &BTreeSet::new()).unwrap());
        let taken = BTreeSet::from([first]);
        let second = pod_ip("uid-1", &taken).unwrap();
        assert_ne!(first, second);
        assert_eq!(second.octets()[..2], [10, 244]);
    }
}
