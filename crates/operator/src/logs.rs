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
    Box::new(lines(filter, writer).finish())
}

/// JSON lines: the innermost span under `span` and the whole scope, outermost first, under
/// `spans`.
pub fn json<W>(filter: EnvFilter, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    Box::new(
        lines(filter, writer)
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .finish(),
    )
}

/// What both formats share: the level filter and where lines go.
fn lines<W>(
    filter: EnvFilter,
    writer: W,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::DefaultFields,
    tracing_subscriber::fmt::format::Format,
    EnvFilter,
    W,
>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
}

/// A buffer the log formats write into, for reading back what a reconcile logged.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Logged(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl std::io::Write for Logged {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
impl Logged {
    /// The lines written, without the text format's colours.
    pub(crate) fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        let mut plain = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|&c| c == 'm');
            } else {
                plain.push(c);
            }
        }
        plain.lines().map(str::to_string).collect()
    }
}
