//! The registry's call into ValidatingAdmissionPolicies (`src/admission.rs`), made by every
//! write after the kind's own validation.

use crate::admission::{self, Attributes};
use crate::errors::ApiError;
use crate::store::Store;

use super::context::RequestContext;

/// Validating admission policies for a client's write (none for the server's own, see
/// [`RequestContext::user`]); `Warn` results are queued on the store for the response.
pub fn run_admission(
    store: &mut Store,
    ctx: &RequestContext,
    attrs: &Attributes<'_>,
) -> Result<(), ApiError> {
    let Some(user) = ctx.user.as_deref() else {
        return Ok(());
    };
    let warnings = admission::validate(store, &Attributes { user, ..*attrs })?;
    store.warnings.extend(warnings);
    Ok(())
}
