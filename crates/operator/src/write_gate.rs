//! The gate every write of the operator passes through, and the error of a write it stopped.
//! It sits below everything that writes and below the elector (`leader.rs`) that opens and
//! closes it, so writers and the elector meet here and not in each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether writes may be sent. Open by default (no leader election); the elector opens it when
/// it takes the lease and closes it, before anything else, when it loses it.
#[derive(Clone, Debug)]
pub struct WriteGate(Arc<AtomicBool>);

impl Default for WriteGate {
    fn default() -> Self {
        WriteGate(Arc::new(AtomicBool::new(true)))
    }
}

impl WriteGate {
    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn close(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    /// `Err` once the gate is closed: what is left of the work is not written.
    pub fn check(&self) -> Result<(), NotLeader> {
        if self.is_open() {
            Ok(())
        } else {
            Err(NotLeader)
        }
    }
}

/// The gate was closed: this operator lost the leader lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this operator lost the leader lease")]
pub struct NotLeader;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_starts_open_and_closes_for_every_clone() {
        let gate = WriteGate::default();
        let seen_by_executor = gate.clone();
        assert!(seen_by_executor.is_open());
        assert_eq!(seen_by_executor.check(), Ok(()));
        gate.close();
        assert!(!seen_by_executor.is_open());
        assert_eq!(seen_by_executor.check(), Err(NotLeader));
    }
}
