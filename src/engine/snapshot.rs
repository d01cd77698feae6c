//! A parsed page, as the classifier reads it: what is visible, its text, its sources.

use scraper::{ElementRef, Html, Node};

use crate::provider::spec::Css;

/// A parsed page (URL, HTML and, where known, the HTTP status of its document).
pub struct Snapshot {
    pub(crate) html: Html,
    pub(crate) url: String,
    pub(crate) status: Option<u16>,
}

impl Snapshot {
    pub fn parse(url: &str, html: &str) -> Snapshot {
        Snapshot {
            html: Html::parse_document(html),
            url: url.to_string(),
            status: None,
        }
    }

    /// The same page, served with this HTTP status.
    pub fn with_status(mut self, status: Option<u16>) -> Snapshot {
        self.status = status;
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn visible<'a>(&'a self, css: &'a Css) -> impl Iterator<Item = ElementRef<'a>> + 'a {
        self.html.select(&css.selector).filter(|el| is_visible(*el))
    }

    pub fn has(&self, css: &Css) -> bool {
        self.visible(css).next().is_some()
    }

    pub(crate) fn page_text(&self) -> String {
        let mut out = String::new();
        if let Some(body) = self.html.select(&BODY).next() {
            visible_text(body, &mut out);
        }
        out
    }

    /// The document's title.
    pub(crate) fn title(&self) -> String {
        self.html
            .select(&TITLE)
            .next()
            .map(|t| {
                t.text()
                    .collect::<String>()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    }

    /// Where scripts, frames, forms and links load from, and the start of each inline script:
    /// what vendor walls leave behind whether or not they show anything.
    pub(crate) fn sources(&self) -> String {
        let mut out = String::new();
        for el in self.html.select(&SOURCES) {
            for attr in ["src", "href", "action", "data-src"] {
                if let Some(value) = el.value().attr(attr) {
                    out.push_str(value);
                    out.push('\n');
                }
            }
            if el.value().name() == "script" && el.value().attr("src").is_none() {
                let text: String = el.text().collect();
                let end = text.char_indices().nth(4096).map_or(text.len(), |(i, _)| i);
                out.push_str(&text[..end]);
                out.push('\n');
            }
        }
        out
    }

    /// The element with this id, if visible.
    pub(crate) fn by_id(&self, id: &str) -> Option<ElementRef<'_>> {
        self.html
            .root_element()
            .descendants()
            .filter_map(ElementRef::wrap)
            .find(|el| el.value().id() == Some(id))
            .filter(|el| is_visible(*el))
    }

    /// The `lang` of the document element.
    pub fn language(&self) -> Option<String> {
        self.html
            .root_element()
            .value()
            .attr("lang")
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
    }
}

static BODY: std::sync::LazyLock<scraper::Selector> =
    std::sync::LazyLock::new(|| scraper::Selector::parse("body").expect("static selector"));
static TITLE: std::sync::LazyLock<scraper::Selector> =
    std::sync::LazyLock::new(|| scraper::Selector::parse("title").expect("static selector"));
static SOURCES: std::sync::LazyLock<scraper::Selector> = std::sync::LazyLock::new(|| {
    scraper::Selector::parse("script, iframe, form[action], link[href], img[src*=captcha i]")
        .expect("static selector")
});

pub(crate) static ALL_IN_BODY: std::sync::LazyLock<Css> = std::sync::LazyLock::new(|| Css {
    source: "body *".into(),
    selector: scraper::Selector::parse("body *").expect("static selector"),
});

/// What the browser would not show: scripts, templates, `hidden`, inline `display:none`.
fn hides(el: &scraper::node::Element) -> bool {
    matches!(
        el.name(),
        "script" | "style" | "template" | "noscript" | "head"
    ) || el.attr("hidden").is_some()
        || el.attr("style").is_some_and(|style| {
            let style: String = style
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_lowercase();
            style.contains("display:none") || style.contains("visibility:hidden")
        })
}

pub(crate) fn is_visible(el: ElementRef<'_>) -> bool {
    !std::iter::once(*el)
        .chain(el.ancestors())
        .any(|node| matches!(node.value(), Node::Element(e) if hides(e)))
}

pub(crate) fn visible_text(el: ElementRef<'_>, out: &mut String) {
    for child in el.children() {
        match child.value() {
            Node::Text(text) => {
                for word in text.split_whitespace() {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(word);
                }
            }
            Node::Element(e) if !hides(e) => {
                if let Some(child) = ElementRef::wrap(child) {
                    visible_text(child, out);
                }
            }
            _ => {}
        }
    }
}

pub(crate) fn element_text(el: ElementRef<'_>) -> String {
    let mut out = String::new();
    visible_text(el, &mut out);
    out
}
