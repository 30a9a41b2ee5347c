//! Object operations with the semantics of kube-apiserver's generic registry (`Store` in
//! `k8s.io/apiserver/pkg/registry/generic/registry`): one file a verb over the store, the
//! per-kind hooks in `strategy`, and the kinds with rules or subresources of their own
//! (`pod`, `crd`, `namespace`, `scale`). Everything runs under the store lock, so each request
//! is atomic.

mod admit;
mod apply;
mod context;
mod crd;
mod create;
mod decode;
mod delete;
mod namespace;
mod object;
mod pod;
mod read;
mod scale;
mod strategy;
mod update;

pub use apply::{apply, patched};
pub use context::{RequestContext, Subresource};
pub use create::create;
pub use decode::parse_object;
pub use delete::{DeleteOpts, delete};
pub use object::key;
pub use pod::bind;
pub use read::{ListOpts, check_exact_snapshot, get, list, list_raw, parse_resource_version};
pub use scale::{apply_scale, scale_of, scale_update};
pub use update::update;
