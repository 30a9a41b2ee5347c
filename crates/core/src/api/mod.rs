//! Custom resources served by gamedeploy, and the CRDs that install them.
//!
//! - [`GameDeployment`]: pods updated by rolling, in-place or hot-patch updates.
//! - [`HookTemplate`] / [`HookRun`]: measurements that gate deletion, updates and canary steps.
//!
//! The CRDs are `apiextensions.k8s.io/v1` with structural schemas that default and validate
//! (OpenAPI bounds plus CEL rules), unlike the original's v1beta1 CRDs which did neither.

pub mod bounds;
mod gamedeployment;
mod hook;
mod lenient;
pub mod schema;
mod stored;

pub use gamedeployment::*;
pub use hook::*;
pub use lenient::*;
pub use stored::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// A CRD could not be rendered as YAML.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the CRDs as YAML: {0}")]
pub struct CrdYamlError(#[from] serde_saphyr::SerializeError);

/// Every CRD gamedeploy serves, in a stable order: GameDeployment, HookTemplate, HookRun.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![GameDeployment::crd(), HookTemplate::crd(), HookRun::crd()]
        .into_iter()
        .map(bounded)
        .collect()
}

/// `crd` with every integer of its schemas bounded (see [`bounds`]).
fn bounded(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut crd = crd;
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.take())
        else {
            continue;
        };
        let mut value = serde_json::to_value(&schema).unwrap_or_default();
        bounds::bound_integers(&mut value);
        let schema = serde_json::from_value(value).unwrap_or(schema);
        if let Some(s) = version.schema.as_mut() {
            s.open_api_v3_schema = Some(schema);
        }
    }
    crd
}

/// File name under `deploy/crds/` for a CRD: `<group>_<plural>.yaml`, as controller-gen names them.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// One CRD as a YAML document.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, CrdYamlError> {
    Ok(serde_saphyr::to_string(crd)?)
}

/// All CRDs as one multi-document YAML stream (`---` between documents), ready for
/// `kubectl apply -f -`; this is what `gamedeploy crds` prints.
pub fn crds_yaml() -> Result<String, CrdYamlError> {
    Ok(serde_saphyr::to_string_multiple(&crds())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{GROUP, VERSION};

    #[test]
    fn crds_are_in_the_names_group_and_version_in_stable_order() {
        let crds = crds();
        let kinds: Vec<_> = crds.iter().map(|c| c.spec.names.kind.as_str()).collect();
        assert_eq!(kinds, ["GameDeployment", "HookTemplate", "HookRun"]);
        for crd in &crds {
            assert_eq!(crd.spec.group, GROUP);
            assert_eq!(crd.spec.versions.len(), 1);
            assert_eq!(crd.spec.versions[0].name, VERSION);
            assert_eq!(crd.spec.scope, "Namespaced");
            assert_eq!(
                crd.metadata.name.as_deref(),
                Some(format!("{}.{}", crd.spec.names.plural, GROUP).as_str())
            );
        }
        assert_eq!(
            crds.iter().map(crd_file_name).collect::<Vec<_>>(),
            [
                "tkex.tencent.com_gamedeployments.yaml",
                "tkex.tencent.com_hooktemplates.yaml",
                "tkex.tencent.com_hookruns.yaml"
            ]
        );
    }

    #[test]
    fn yaml_stream_has_one_document_per_crd() {
        let yaml = crds_yaml().unwrap();
        let docs: Vec<CustomResourceDefinition> = serde_saphyr::from_multiple(&yaml).unwrap();
        assert_eq!(docs, crds());
    }
}
