//! The per-pod in-place update state machine: a pure core. The controller observes a pod,
//! calls [`advance`] with the pod's decoded state annotation, and executes the returned
//! [`Action`]s; nothing here performs IO.
//!
//! What the rest of the workspace uses is here, each item at one path (`inplace::X`):
//! - [`advance`] ([`Input`], [`Target`], [`Policy`] → [`MachineStep`], [`Transition`]): where
//!   a pod's state changes.
//! - [`at_rest`]: the step [`advance`] would take for a settled pod, without running it.
//! - [`observed_state`]: what `gamedeploy status` shows, and what a force is judged against.
//! - [`check_force`] ([`Forced`], [`ForceRefused`]): whether the operator accepts a force
//!   request, and what it will do.
//! - [`Record`], [`Decoded`], [`decode`], [`encode`]: the persisted checkpoint and its
//!   annotation codec.
//! - [`PodView`], [`ContainerView`]: the view of a pod the machine decides on.
//! - [`Action`], [`PodWrite`], [`HookRunRequest`] and their parts: what the controller is
//!   asked to do.
//! - [`State`], [`Trigger`]: state and trigger names (a contract with users and scripts).
//! - [`table`], the one public submodule: the transition table from
//!   `states/transitions.yaml`, which `gamedeploy states` prints and the FSM tests check.
//!
//! Behind it: `machine.rs` (the three functions), `state.rs`, `record.rs`, `observe.rs`,
//! `action.rs`, `completion.rs` (how a finished or failed container restart is recognised),
//! `force.rs` (the forcible edges, and refusals worded for the user), `rest.rs` (the
//! settled pod's step, known without running the machine) and `table.rs`.
mod action;
mod completion;
mod force;
mod machine;
/// Crate-visible for the planner, which reads a pod's unapplied hot patch from its view.
pub(crate) mod observe;
mod record;
mod resources;
mod rest;
mod state;
pub mod table;

/// The planner builds its own pod HookRuns (pre-delete, gates) with the same arguments.
pub(crate) use action::pod_hook_args;
pub use action::{Action, ConditionWrite, Endpoint, EventType, HookKind, HookRunRequest, PodWrite};
pub(crate) use action::{attempt_name, attempt_of, retry_due};
pub use force::{ForceRefused, Forced};
pub use machine::{
    Input, MachineStep, Policy, Target, Transition, advance, check_force, observed_state,
};
pub use observe::{
    CONDITION_POD_RESIZE_IN_PROGRESS, CONDITION_POD_RESIZE_PENDING, ContainerView, PodView,
    RESIZE_DEFERRED, RESIZE_INFEASIBLE, ResizePending, ResizeStatus,
};
pub use record::{ContainerSnapshot, Decoded, Record, decode, encode};
pub use resources::{ContainerResources, QosClass, RESIZABLE, qos_class, same_quantity};
pub use rest::at_rest;
pub use state::{State, Trigger};
