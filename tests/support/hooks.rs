//! Hook answers the tests script: a [`Measure`] that holds each web measurement until the
//! test has said what its URL answers, so a HookRun's outcome is the test's choice and the real
//! HookRun controller records it.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use gamedeploy_core::hookrun::{Observation, ProviderCall};
use gamedeploy_operator::hookruns::providers::Measure;
use tokio::sync::watch;

/// Answers by URL; a measurement of a URL without an answer waits for one.
#[derive(Clone)]
pub struct Answers {
    table: Arc<watch::Sender<BTreeMap<String, Observation>>>,
    /// Measurements answered.
    pub taken: Arc<AtomicU64>,
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            table: Arc::new(watch::channel(BTreeMap::new()).0),
            taken: Arc::default(),
        }
    }
}

impl Answers {
    /// From now on `url` answers HTTP 200 with `body`.
    pub fn answer(&self, url: &str, body: serde_json::Value) {
        self.table.send_modify(|t| {
            t.insert(
                url.to_string(),
                Observation::Http {
                    status: 200,
                    body: body.to_string(),
                },
            );
        });
    }

    pub fn measure(&self) -> Arc<dyn Measure> {
        Arc::new(self.clone())
    }
}

impl Measure for Answers {
    fn measure<'a>(&'a self, call: &'a ProviderCall) -> BoxFuture<'a, Observation> {
        Box::pin(async move {
            let ProviderCall::Web { url, .. } = call else {
                return Observation::Error("the test scripts web answers only".into());
            };
            let mut rx = self.table.subscribe();
            let answer = rx
                .wait_for(|t| t.contains_key(url))
                .await
                .map(|t| t[url].clone());
            self.taken.fetch_add(1, Ordering::SeqCst);
            answer.unwrap_or_else(|_| Observation::Error("the test ended".into()))
        })
    }
}
