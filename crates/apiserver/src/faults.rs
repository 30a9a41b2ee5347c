//! Seeded fault injection: conflicts, server errors, latency and dropped watches, optionally
//! scoped to one client identity, so a scenario can stress the operator reproducibly.

use std::time::Duration;

use super::errors::ApiError;

/// What to inject. Rates are probabilities in `[0, 1]` per eligible request.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    pub seed: u64,
    /// Share of eligible requests answered `409 Conflict`.
    pub conflict_rate: f64,
    /// Share of eligible requests answered `500 InternalError`.
    pub error_rate: f64,
    /// Added before every eligible request is handled (virtual under paused tokio time).
    pub latency: Duration,
    /// How late each change reaches an eligible client's watches (opened while this is set):
    /// a slow watch cache, so a client's reads lag its own writes. Initial events are not
    /// delayed.
    pub watch_delay: Duration,
    /// Only requests from this client identity are eligible (all clients when `None`).
    pub client: Option<String>,
    /// Only writes (create/update/patch/delete/deletecollection) get 409/500 when true.
    pub writes_only: bool,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            conflict_rate: 0.0,
            error_rate: 0.0,
            latency: Duration::ZERO,
            watch_delay: Duration::ZERO,
            client: None,
            writes_only: true,
        }
    }
}

#[derive(Debug)]
pub struct Faults {
    cfg: Option<FaultConfig>,
    rng: fastrand::Rng,
    pub injected: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            cfg: None,
            rng: fastrand::Rng::with_seed(0),
            injected: 0,
        }
    }
}

/// What fault injection does to one request: a delay, and maybe an error instead of an answer.
#[derive(Debug, Default)]
pub struct Injection {
    pub latency: Duration,
    pub error: Option<ApiError>,
}

pub fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

impl Faults {
    pub fn set(&mut self, cfg: Option<FaultConfig>) {
        if let Some(c) = &cfg {
            self.rng = fastrand::Rng::with_seed(c.seed);
        }
        self.cfg = cfg;
    }

    pub fn applies_to(&self, client: &str) -> bool {
        self.cfg
            .as_ref()
            .is_some_and(|c| c.client.as_deref().is_none_or(|x| x == client))
    }

    /// The delay of change events on a watch `client` opens now.
    pub fn watch_delay(&self, client: &str) -> Duration {
        match &self.cfg {
            Some(c) if self.applies_to(client) => c.watch_delay,
            _ => Duration::ZERO,
        }
    }

    pub fn decide(
        &mut self,
        client: &str,
        verb: &str,
        group: &str,
        plural: &str,
        name: &str,
    ) -> Injection {
        let Some(cfg) = self.cfg.clone() else {
            return Injection::default();
        };
        if !self.applies_to(client) {
            return Injection::default();
        }
        let mut d = Injection {
            latency: cfg.latency,
            error: None,
        };
        // Watches are long-running: they are disturbed with `drop_watches` instead.
        if verb == "watch" || (cfg.writes_only && !is_write(verb)) {
            return d;
        }
        let roll = self.rng.f64();
        if roll < cfg.conflict_rate {
            d.error = Some(ApiError::stale(group, plural, name));
        } else if roll < cfg.conflict_rate + cfg.error_rate {
            d.error = Some(ApiError::internal("injected fault"));
        }
        if d.error.is_some() {
            self.injected += 1;
        }
        d
    }
}
