//! The transition table, as data: `states/transitions.yaml` is compiled in and is the single
//! authority on which transitions exist and which a user may force. The machine checks every
//! transition it takes against it; tests check the reverse (every edge is exercised).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use strum::IntoEnumIterator;

use super::state::{State, Trigger};

/// The YAML source, as committed.
pub const SOURCE: &str = include_str!("../../../../states/transitions.yaml");

/// A node of the diagram: a state, or the start of a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Start,
    State(State),
}

impl Node {
    fn label(self) -> String {
        match self {
            Node::Start => "[*]".to_string(),
            Node::State(s) => s.to_string(),
        }
    }
}

impl Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "[*]" {
            return Ok(Node::Start);
        }
        State::from_str(&s)
            .map(Node::State)
            .map_err(|_| serde::de::Error::custom(format!("unknown state {s:?}")))
    }
}

/// Which pod endpoint a transition writes to, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteKind {
    None,
    Pod,
    Status,
    /// `pods/resize`: containers' cpu/memory only, no metadata, so no checkpoint; the state
    /// it leads to is derived from the pod spec.
    Resize,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEdge {
    pub from: Node,
    pub to: State,
    pub trigger: Trigger,
    /// The checkpoint write that goes with the transition.
    pub write: WriteKind,
    /// Other actions (CreateHookRun, Event).
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub forcible: bool,
    /// Why the edge exists, for the diagram and for reviewers.
    pub why: String,
}

/// A state's row: whether it is persisted, and what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRow {
    pub name: State,
    pub persisted: bool,
    pub meaning: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub states: Vec<StateRow>,
    pub transitions: Vec<TableEdge>,
}

/// The table is malformed; fix `states/transitions.yaml`.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("states/transitions.yaml does not parse: {0}")]
    Parse(String),
    #[error("states/transitions.yaml: {0}")]
    Inconsistent(String),
}

impl Table {
    /// Parses and checks a table.
    pub fn parse(source: &str) -> Result<Self, TableError> {
        let t: Table =
            serde_saphyr::from_str(source).map_err(|e| TableError::Parse(e.to_string()))?;
        t.check()?;
        Ok(t)
    }

    fn check(&self) -> Result<(), TableError> {
        let listed: Vec<State> = self.states.iter().map(|s| s.name).collect();
        let all: Vec<State> = State::iter().collect();
        if listed != all {
            return Err(TableError::Inconsistent(format!(
                "states must list every state once, in code order: {all:?}, found {listed:?}"
            )));
        }
        for row in &self.states {
            if row.persisted != row.name.is_persisted() {
                return Err(TableError::Inconsistent(format!(
                    "state {} is persisted={} in code but {} in the table",
                    row.name,
                    row.name.is_persisted(),
                    row.persisted
                )));
            }
        }
        let mut seen = BTreeSet::new();
        for e in &self.transitions {
            if !seen.insert((e.from, e.to, e.trigger)) {
                return Err(TableError::Inconsistent(format!(
                    "duplicate edge {} -> {} on {}",
                    e.from.label(),
                    e.to,
                    e.trigger
                )));
            }
            if e.forcible != (e.trigger == Trigger::Forced) {
                return Err(TableError::Inconsistent(format!(
                    "edge {} -> {}: forcible edges, and only they, have trigger Forced",
                    e.from.label(),
                    e.to
                )));
            }
            let persisted_target = e.to.is_persisted();
            if e.write == WriteKind::Resize && persisted_target {
                return Err(TableError::Inconsistent(format!(
                    "edge {} -> {} on {}: a resize carries no checkpoint, so it leads only into \
                     a derived state",
                    e.from.label(),
                    e.to,
                    e.trigger
                )));
            }
            let writes_checkpoint = !matches!(e.write, WriteKind::None | WriteKind::Resize);
            if writes_checkpoint != persisted_target && e.to != State::Pending {
                return Err(TableError::Inconsistent(format!(
                    "edge {} -> {} on {}: a transition into a persisted state writes its checkpoint, \
                     and only those write",
                    e.from.label(),
                    e.to,
                    e.trigger
                )));
            }
        }
        Ok(())
    }

    /// The edge `from -> to` on `trigger`, if the table has it.
    pub fn edge(&self, from: Node, to: State, trigger: Trigger) -> Option<&TableEdge> {
        self.transitions
            .iter()
            .find(|e| e.from == from && e.to == to && e.trigger == trigger)
    }

    /// Whether a user may force `from -> to`.
    pub fn forcible(&self, from: State, to: State) -> bool {
        self.edge(Node::State(from), to, Trigger::Forced).is_some()
    }

    /// The states a user may force from `from`, for refusal messages.
    pub fn forcible_from(&self, from: State) -> Vec<State> {
        self.transitions
            .iter()
            .filter(|e| e.forcible && e.from == Node::State(from))
            .map(|e| e.to)
            .collect()
    }

    /// Renders the diagram as Mermaid (what `states/README.md` embeds).
    pub fn mermaid(&self) -> String {
        let mut out = String::from("stateDiagram-v2\n");
        for row in &self.states {
            let tag = if row.persisted {
                "persisted"
            } else {
                "derived"
            };
            let _ = writeln!(out, "    {}: {} ({tag})", row.name, row.name);
        }
        for e in &self.transitions {
            let mut label = e.trigger.to_string();
            if e.write != WriteKind::None {
                let _ = write!(
                    label,
                    " / write {}",
                    match e.write {
                        WriteKind::Pod => "pod",
                        WriteKind::Status => "pods/status",
                        WriteKind::Resize => "pods/resize",
                        WriteKind::None => "",
                    }
                );
            }
            let _ = writeln!(out, "    {} --> {}: {label}", e.from.label(), e.to);
        }
        out
    }

    /// Renders the table as Markdown rows.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| from | to | trigger | write | other actions | forcible |\n|---|---|---|---|---|---|\n",
        );
        for e in &self.transitions {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:?} | {} | {} |",
                e.from.label(),
                e.to,
                e.trigger,
                e.write,
                e.actions.join(", "),
                if e.forcible { "yes" } else { "" }
            );
        }
        out
    }
}

/// The compiled-in table. It is checked by tests, so a parse failure here is a build defect;
/// callers still get an error rather than a panic.
pub fn table() -> Result<&'static Table, &'static TableError> {
    static TABLE: OnceLock<Result<Table, TableError>> = OnceLock::new();
    TABLE.get_or_init(|| Table::parse(SOURCE)).as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_table_parses_and_is_consistent() {
        let t = table().expect("states/transitions.yaml");
        assert!(t.forcible(State::GracefulWait, State::ImagePatched));
        assert!(!t.forcible(State::Ready, State::GracefulWait));
        assert!(
            t.edge(Node::Start, State::Pending, Trigger::Selected)
                .is_some()
        );
    }

    #[test]
    fn a_broken_table_is_an_error_not_a_panic() {
        assert!(matches!(
            Table::parse("states: ["),
            Err(TableError::Parse(_))
        ));
        assert!(matches!(
            Table::parse("states: []\ntransitions: []"),
            Err(TableError::Inconsistent(_))
        ));
        let dup = SOURCE.to_string()
            + "  - {from: Pending, to: Unready, trigger: NoHook, write: status, why: dup}\n";
        assert!(matches!(
            Table::parse(&dup),
            Err(TableError::Inconsistent(_))
        ));
    }
}
