//! Protobuf bodies as kubectl sends them, read as their JSON; what cannot be read is refused.

use super::*;

/// A field as protobuf writes it: key, then a varint or a length-delimited value.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}
fn bytes(number: u64, b: &[u8]) -> Vec<u8> {
    let mut out = varint(number << 3 | 2);
    out.extend(varint(b.len() as u64));
    out.extend(b);
    out
}
fn int(number: u64, n: i64) -> Vec<u8> {
    let mut out = varint(number << 3);
    out.extend(varint(n as u64));
    out
}
fn entry(number: u64, k: &str, v: &[u8]) -> Vec<u8> {
    bytes(number, &[bytes(1, k.as_bytes()), bytes(2, v)].concat())
}
/// What kubectl sends: the magic, then an Unknown around the object's bytes.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [bytes(1, api_version.as_bytes()), bytes(2, kind.as_bytes())].concat();
    [MAGIC.to_vec(), bytes(1, &type_meta), bytes(2, raw)].concat()
}

#[test]
fn a_namespace_as_kubectl_create_sends_it() {
    let ns = [bytes(1, &bytes(1, b"games")), bytes(2, &[]), bytes(3, &[])].concat();
    assert_eq!(
        to_json(&envelope("v1", "Namespace", &ns)).unwrap(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "games"},
               "spec": {}, "status": {}})
    );
}

#[test]
fn maps_bytes_times_quantities_and_int_or_strings_read_as_their_json() {
    let secret = [
        bytes(
            1,
            &[bytes(1, b"db"), bytes(8, &int(1, 1_767_225_600))].concat(),
        ),
        entry(2, "password", b"hunter2"),
        entry(2, "user", b"admin"),
        bytes(3, b"Opaque"),
    ]
    .concat();
    let v = to_json(&envelope("v1", "Secret", &secret)).unwrap();
    assert_eq!(
        v["data"],
        json!({"password": "aHVudGVyMg==", "user": "YWRtaW4="})
    );
    assert_eq!(v["type"], "Opaque");
    assert_eq!(v["metadata"]["creationTimestamp"], "2026-01-01T00:00:00Z");

    let container = [
        bytes(1, b"app"),
        bytes(2, b"nginx:1.25"),
        bytes(6, &int(3, 8080)),
        bytes(8, &entry(2, "cpu", &bytes(1, b"250m"))),
    ]
    .concat();
    let strategy = bytes(
        2,
        &[
            bytes(1, &[int(1, 1), bytes(3, b"25%")].concat()),
            bytes(2, &int(2, 1)),
        ]
        .concat(),
    );
    let spec = [
        int(1, 3),
        bytes(2, &entry(1, "app", b"web")),
        bytes(3, &bytes(2, &bytes(2, &container))),
        bytes(4, &[bytes(1, b"RollingUpdate"), strategy].concat()),
    ]
    .concat();
    let deployment = [bytes(1, &bytes(1, b"web")), bytes(2, &spec)].concat();
    let v = to_json(&envelope("apps/v1", "Deployment", &deployment)).unwrap();
    assert_eq!(v["spec"]["replicas"], 3);
    assert_eq!(
        v["spec"]["selector"],
        json!({"matchLabels": {"app": "web"}})
    );
    let c = &v["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.25");
    assert_eq!(c["ports"], json!([{"containerPort": 8080}]));
    assert_eq!(c["resources"]["requests"]["cpu"], "250m");
    assert_eq!(
        v["spec"]["strategy"]["rollingUpdate"],
        json!({"maxUnavailable": "25%", "maxSurge": 1})
    );
}

#[test]
fn what_cannot_be_read_is_refused_never_dropped() {
    let e = to_json(b"{\"kind\":\"Namespace\"}").unwrap_err();
    assert_eq!(e.code, 400);
    assert!(
        e.message
            .contains("does not appear to be a protobuf message")
    );
    let e = to_json(&envelope("v1", "Pod", &[])).unwrap_err();
    assert_eq!(e.code, 415, "{}", e.message);
    // A container with a liveness probe: a field this reader does not read.
    let container = [bytes(1, b"app"), bytes(10, &[])].concat();
    let spec = bytes(3, &bytes(2, &bytes(2, &container)));
    let e = to_json(&envelope("apps/v1", "Deployment", &bytes(2, &spec))).unwrap_err();
    assert_eq!(e.code, 415);
    assert!(
        e.message.contains("field livenessProbe of Container"),
        "{}",
        e.message
    );
    let e = to_json(&envelope("v1", "Namespace", &bytes(1, &bytes(99, b"x")))).unwrap_err();
    assert!(
        e.message.contains("field 99 of ObjectMeta"),
        "{}",
        e.message
    );
    let e = to_json(&envelope("v1", "Namespace", &[0x0a, 0x05, 0x0a])).unwrap_err();
    assert_eq!(e.message, "the protobuf message is truncated");
}

#[test]
fn every_message_a_field_names_is_in_the_table() {
    for (name, fields) in MESSAGES {
        for field in *fields {
            if let Msg(inner) = field.ty {
                assert!(
                    MESSAGES.iter().any(|(n, _)| *n == inner),
                    "{name}.{} names {inner}",
                    field.name
                );
            }
        }
    }
    for (_, kind) in KINDS {
        assert!(MESSAGES.iter().any(|(n, _)| n == kind), "{kind}");
    }
}
