//! Log filtering that keeps page content and request bodies out of the logs, whatever
//! `RUST_LOG` says.

use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterFn};

/// Crates whose own debug and trace events carry what we must never log: the HTML parser and
/// selector engine print the page being parsed (a password a portal echoes, 2,133 times at
/// `debug` on one page), and the HTTP, WebDriver, WebSocket and IMAP clients print request and
/// response bodies (typed values travel in WebDriver command bodies, the mailbox password in
/// IMAP `LOGIN`). A target matches as `EnvFilter` matches: by prefix (`hyper` is also
/// `hyper_util` and `hyper_rustls`).
pub const PAGE_CONTENT_TARGETS: &[&str] = &[
    "html5ever",
    "markup5ever",
    "selectors",
    "scraper",
    "cssparser",
    "fantoccini",
    "webdriver",
    "hyper",
    "h2",
    "reqwest",
    "tungstenite",
    "tokio_tungstenite",
    "async_imap",
    "imap_proto",
    "axum::rejection",
];

/// Whether events of `target` are dropped.
pub fn is_page_content_target(target: &str) -> bool {
    PAGE_CONTENT_TARGETS.iter().any(|t| target.starts_with(t))
}

/// The user's directives (`warn` when there are none or they do not parse), then `=off` for
/// each of [`PAGE_CONTENT_TARGETS`]: an equal directive given later replaces the user's.
pub fn env_filter(directives: Option<&str>) -> EnvFilter {
    let mut filter = directives
        .and_then(|d| EnvFilter::try_new(d).ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    for target in PAGE_CONTENT_TARGETS {
        filter = filter.add_directive(format!("{target}=off").parse().expect("static directive"));
    }
    filter
}

/// A second filter beside [`env_filter`] for what directives cannot forbid: a more specific
/// user directive (`html5ever::tokenizer=trace`) outranks `html5ever=off`, and a span directive
/// (`[pair]=trace`) enables every target inside the span.
pub fn without_page_content() -> FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool> {
    filter_fn(|metadata| !is_page_content_target(metadata.target()))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What a parser event and one of ours leave in a log filtered for `directives`.
    fn logged(directives: &str, guarded: bool) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .with_filter(env_filter(Some(directives)));
        let emit = || {
            let span = tracing::info_span!("pair");
            let _entered = span.enter();
            tracing::debug!(target: "html5ever::tree_builder", "processing canary-page-text");
            tracing::debug!(target: "pairing_worker::engine", "our own event");
        };
        if guarded {
            let layer = layer.with_filter(without_page_content());
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
        } else {
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
        }
        let text = String::from_utf8_lossy(&out.0.lock().expect("buffer")).to_string();
        text
    }

    #[test]
    fn no_directive_re_enables_page_content() {
        for directives in [
            "trace",
            "debug,html5ever=trace",
            "html5ever::tree_builder=trace,pairing_worker=debug",
            "[pair]=trace",
        ] {
            let out = logged(directives, true);
            assert!(out.contains("our own event"), "{directives}: {out}");
            assert!(!out.contains("canary-page-text"), "{directives}: {out}");
        }
        // Why the second filter: directives alone let a more specific target or a span through.
        for directives in ["html5ever::tree_builder=trace", "[pair]=trace"] {
            assert!(
                logged(directives, false).contains("canary-page-text"),
                "{directives}"
            );
        }
        assert!(!logged("trace", false).contains("canary-page-text"));
    }
}
