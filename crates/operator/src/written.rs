//! A write's answer as the executor reads it: the object's new resourceVersion and nothing else.
//! kube-apiserver answers every write with the whole object as stored; decoding a pod for one
//! string built its spec, status and labels (and, before the cache stopped reading them, its
//! managedFields), for every pod write of a rollout. The rest of the answer is skipped unread.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Deserializer};

/// The answer to a write of a `K`: its metadata holds only the resourceVersion. An `Api<Written<K>>`
/// reaches the same URLs as an `Api<K>`.
pub struct Written<K> {
    metadata: ObjectMeta,
    kind: PhantomData<fn() -> K>,
}

impl<K> Written<K> {
    /// The written object's resourceVersion, when the answer carried one.
    pub fn version(&self) -> Option<&str> {
        self.metadata.resource_version.as_deref()
    }
}

impl<K> Clone for Written<K> {
    fn clone(&self) -> Self {
        Written {
            metadata: self.metadata.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Written<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Written")
            .field("resource_version", &self.metadata.resource_version)
            .finish()
    }
}

impl<'de, K> Deserialize<'de> for Written<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            metadata: Meta,
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Meta {
            #[serde(default)]
            resource_version: Option<String>,
        }
        let answer = Answer::deserialize(d)?;
        Ok(Written {
            metadata: ObjectMeta {
                resource_version: answer.metadata.resource_version,
                ..ObjectMeta::default()
            },
            kind: PhantomData,
        })
    }
}

impl<K: Resource> Resource for Written<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;

    use super::*;

    #[test]
    fn reads_only_the_resource_version() {
        let answer = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "p", "resourceVersion": "42",
                "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}],
            },
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"},
        });
        let w: Written<Pod> = serde_json::from_value(answer).unwrap();
        assert_eq!(w.version(), Some("42"));
        assert_eq!(w.meta().name, None);
    }

    #[test]
    fn an_answer_without_metadata_has_no_version() {
        let w: Written<Pod> = serde_json::from_str(r#"{"kind":"Pod"}"#).unwrap();
        assert_eq!(w.version(), None);
    }

    #[test]
    fn reaches_the_urls_of_its_kind() {
        assert_eq!(Written::<Pod>::plural(&()), "pods");
        assert_eq!(Written::<Pod>::kind(&()), "Pod");
        assert_eq!(Written::<Pod>::api_version(&()), "v1");
    }
}
