//! The per-pod in-place update state machine: a pure core. The controller observes a pod,
//! calls [`advance`], and executes the returned [`Action`]s; nothing here performs IO.
//!
//! - [`machine`]: the transition function, where a pod's state changes.
//! - [`state`]: state and trigger names (a contract with users and scripts).
//! - [`record`]: the persisted checkpoint and its annotation codec.
//! - [`observe`]: the view of a pod the machine decides on.
//! - [`completion`]: how a finished (or failed) container restart is recognised.
//! - [`action`]: what the controller is asked to do.
//! - [`force`]: which force requests are accepted, and what they do.
//! - [`table`]: the transition table from `states/transitions.yaml`.
pub mod action;
pub mod completion;
pub mod force;
pub mod machine;
pub mod observe;
pub mod record;
pub mod state;
pub mod table;

pub use action::{
    Action, ConditionWrite, Endpoint, EventType, HookKind, HookRunRequest, PodWrite, pod_hook_args,
};
pub use force::{ForceRefused, Forced};
pub use machine::{
    HookPhase, Input, MachineStep, Policy, Target, Transition, advance, advance_decoded,
    observed_state,
};
pub use observe::{ContainerView, PodView};
pub use record::{ContainerSnapshot, Decoded, Record, decode, encode};
pub use state::{State, Trigger};
