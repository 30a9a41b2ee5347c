//! The scenario's hook endpoints: HookRun measurements answered from the scenario's `hooks`
//! list instead of the network, so a hook-gated rollout replays on virtual time. Kubernetes
//! metrics go to the embedded API server through the operator's own provider.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use gamedeploy_core::hookrun::{Observation, ProviderCall, prometheus_observation};
use gamedeploy_operator::hookruns::providers::{Measure, Providers, prometheus_url};

use crate::scenario::{HookAnswer, HookResponder};

/// Answers measurements as the scenario scripts them. One per simulation: the endpoints'
/// answer counts survive operator restarts, as a real endpoint's state would.
pub struct ScriptedHooks {
    responders: Vec<HookResponder>,
    /// Answers given so far, by URL.
    served: Mutex<HashMap<String, u64>>,
    kube: Providers,
}

impl ScriptedHooks {
    pub fn new(responders: Vec<HookResponder>, kube: kube::Client) -> Self {
        ScriptedHooks {
            responders,
            served: Mutex::default(),
            kube: Providers::new(kube),
        }
    }

    /// The next scripted answer for `url`, if the scenario scripts one.
    fn next(&self, url: &str) -> Option<HookAnswer> {
        let responder = self.responders.iter().find(|r| matches(&r.url, url))?;
        let mut served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        let n = served.entry(url.to_string()).or_default();
        let answer = nth_answer(&responder.answers, *n);
        *n += 1;
        Some(answer.clone())
    }

    async fn answer(&self, url: &str) -> Result<(u16, String), String> {
        let answer = self.next(url).ok_or_else(|| {
            format!("{url} did not answer: the scenario's hooks list has no entry for it")
        })?;
        if let Some(delay) = answer.delay {
            tokio::time::sleep(delay).await;
        }
        Ok((answer.status, answer.body))
    }
}

/// The `n`-th answer (from 0) of a list whose entries repeat `times` each; the last repeats.
fn nth_answer(answers: &[HookAnswer], n: u64) -> &HookAnswer {
    let mut left = n;
    for a in answers {
        if left < a.times {
            return a;
        }
        left -= a.times;
    }
    answers
        .last()
        .expect("the scenario loader refuses an empty answer list")
}

/// Whether `url` matches `pattern`, in which `*` stands for any run of characters.
fn matches(pattern: &str, url: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = parts.split_first().expect("split yields at least one part");
    let Some(mut tail) = url.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return tail.is_empty();
    };
    for part in middle {
        match tail.find(part) {
            Some(i) => tail = &tail[i + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

impl Measure for ScriptedHooks {
    fn measure<'a>(&'a self, call: &'a ProviderCall) -> BoxFuture<'a, Observation> {
        Box::pin(async move {
            match call {
                ProviderCall::Web { url, .. } => match self.answer(url).await {
                    Ok((status, body)) => Observation::Http { status, body },
                    Err(e) => Observation::Error(e),
                },
                ProviderCall::Prometheus { address, query } => {
                    match self.answer(&prometheus_url(address, query)).await {
                        Ok((status, body)) => prometheus_observation(status, &body),
                        Err(e) => Observation::Error(e),
                    }
                }
                ProviderCall::Kubernetes { .. } => self.kube.measure(call).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_matches_any_run_of_characters() {
        assert!(matches("http://*:8080/drain", "http://10.0.0.7:8080/drain"));
        assert!(!matches(
            "http://*:8080/drain",
            "http://10.0.0.7:8080/drain?x"
        ));
        assert!(matches("http://*:8080/*", "http://a:8080/drain?x"));
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
        assert!(matches("*", ""));
        assert!(!matches("a*a", "a"));
    }

    #[test]
    fn answers_go_in_turn_and_the_last_repeats() {
        let a = |status, times| HookAnswer {
            status,
            body: String::new(),
            times,
            delay: None,
        };
        let list = [a(503, 2), a(200, 1), a(404, 1)];
        let seen: Vec<u16> = (0..6).map(|n| nth_answer(&list, n).status).collect();
        assert_eq!(seen, [503, 503, 200, 404, 404, 404]);
    }
}
