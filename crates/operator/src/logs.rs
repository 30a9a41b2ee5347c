//! How log lines are written: as text for people, or as JSON lines for a log pipeline. Both
//! carry the spans a line was logged in, so a line inside a reconcile names its object (the
//! `reconcile` span's namespace, name and trigger) without repeating it by hand. The name's
//! field is named after the kind (`gamedeployment`, `hookrun`): a field `name` would collide
//! with the span's own name in JSON.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Text lines: each starts with its spans, `reconcile{namespace=… gamedeployment=… trigger=…}:`.
pub fn text<W>(filter: EnvFilter, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    Box::new(
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .finish(),
    )
}

/// JSON lines: the innermost span under `span` and the whole scope, outermost first, under
/// `spans`.
pub fn json<W>(filter: EnvFilter, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    Box::new(
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .finish(),
    )
}
