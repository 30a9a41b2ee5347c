//! The GameDeployment as the owner of what a plan creates (pods, revisions, HookRuns).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::api::GameDeployment;
use crate::names;

/// The owner of the pods: enough of the GameDeployment to reference it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

impl Owner {
    /// `gd` as the owner of what its plan creates.
    pub(crate) fn of(gd: &GameDeployment) -> Self {
        Owner {
            name: gd.metadata.name.clone().unwrap_or_default(),
            namespace: gd.metadata.namespace.clone().unwrap_or_default(),
            uid: gd.metadata.uid.clone().unwrap_or_default(),
        }
    }

    pub fn reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: format!("{}/{}", names::GROUP, names::VERSION),
            kind: "GameDeployment".into(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}
