//! HookTemplates checked when they are applied: a condition too long, too deep or too costly,
//! a duration past its maximum, a duplicated argument is reported on the template itself, once
//! per generation, instead of first showing up as an Error HookRun when a rollout needs it.

use std::collections::HashMap;
use std::sync::Mutex;

use gamedeploy_core::api::HookTemplate;
use gamedeploy_core::hookrun::check_template;
use gamedeploy_core::names;
use kube::{Resource, ResourceExt};

use crate::events::Events;

/// The generation of each template (by uid) already checked, so an unchanged template is
/// compiled and reported once however often the watch shows it.
#[derive(Default)]
pub struct TemplateChecks {
    checked: Mutex<HashMap<String, Option<i64>>>,
}

impl TemplateChecks {
    /// Checks `template` once per generation and, if it cannot run, sends one Warning event
    /// naming every problem.
    pub async fn check(&self, template: &HookTemplate, events: &Events) {
        let uid = template.uid().unwrap_or_default();
        let generation = template.metadata.generation;
        {
            let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
            if checked.get(&uid) == Some(&generation) {
                return;
            }
            checked.insert(uid, generation);
        }
        let Err(errors) = check_template(&template.spec) else {
            return;
        };
        let mut regarding = template.object_ref(&());
        regarding.resource_version = None;
        let note = format!("runs of this template cannot start: {errors}");
        events
            .emit(&regarding, true, names::EVENT_HOOKTEMPLATE_INVALID, &note)
            .await;
    }

    /// Forgets a deleted template.
    pub fn forget(&self, template: &HookTemplate) {
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&template.uid().unwrap_or_default());
    }
}
