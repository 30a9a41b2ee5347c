//! In-place update state machine.
