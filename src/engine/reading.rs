//! What a page says, read the same way on every provider: the vendor walls on it, the messages in
//! its error and notice surfaces and the concepts they express, the state of each listed store.
//! The classifier weighs these against the page rule (one precedence order decides).

use std::collections::HashSet;

use scraper::ElementRef;
use serde::Serialize;

use super::snapshot::{element_text, is_visible, Snapshot};
use crate::outcome::{Outcome, StoreState};
use crate::provider::lexicon::walls::{Wall, SMALL_PAGE};
use crate::provider::lexicon::{Concept, Hit, Lexicon};
use crate::provider::spec::{Css, ProviderSpec};

/// The longest message a surface may hold and still be one message (a longer one is a container:
/// the surfaces inside it are read instead).
const MAX_MESSAGE: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SurfaceKind {
    /// An alert, a toast, an error box, a field hint: unexplained text here stops the pairing.
    Error,
    /// A status region, a banner, a heading, the title: read, never stops on its own.
    Notice,
}

/// One message surface and what the lexicon reads in it.
#[derive(Debug, Clone, Serialize)]
pub struct Surface {
    pub kind: SurfaceKind,
    /// The selector that found it (or `aria-describedby` / `title`).
    pub found_by: String,
    pub text: String,
    pub hits: Vec<Hit>,
    /// Whether what the lexicon (or a spec signal) knows explains this message.
    pub explained: bool,
}

/// A vendor wall that fired.
#[derive(Debug, Clone, Serialize)]
pub struct WallHit {
    pub vendor: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Every message surface of the page, outermost message first, each read by the lexicon.
/// `exclude` adds containers to skip (the spec's overlays). On a page behind the login
/// (`logged_in`), concepts about the login itself are dropped: they explain the message but decide
/// nothing there (an "invalid code" on a dashboard is a promo code).
pub fn surfaces(
    spec: &ProviderSpec,
    snapshot: &Snapshot,
    lexicon: &Lexicon,
    logged_in: bool,
) -> Vec<Surface> {
    // A portal's own popup shell is noise (announcements, tours) until it holds an alert dialog:
    // the same layer that shows news shows "this account is locked", and that is a message.
    let alerts = |el: &ElementRef<'_>| {
        std::iter::once(*el)
            .chain(el.descendants().filter_map(ElementRef::wrap))
            .any(|e| e.value().attr("role") == Some("alertdialog"))
    };
    let overlays = spec
        .overlays
        .iter()
        .flat_map(|o| o.present.iter())
        .flat_map(|css| snapshot.html.select(&css.selector))
        .filter(|el| !alerts(el));
    let excluded: HashSet<ego_tree::NodeId> = spec
        .surfaces
        .grouped
        .exclude
        .iter()
        .flat_map(|css| snapshot.html.select(&css.selector))
        .chain(overlays)
        .map(|el| el.id())
        .collect();
    let is_excluded = |el: ElementRef<'_>| {
        std::iter::once(el.id())
            .chain(el.ancestors().map(|a| a.id()))
            .any(|id| excluded.contains(&id))
    };
    let mut found: Vec<(ElementRef<'_>, SurfaceKind, String)> = Vec::new();
    fn add<'a>(
        el: ElementRef<'a>,
        kind: SurfaceKind,
        by: &str,
        found: &mut Vec<(ElementRef<'a>, SurfaceKind, String)>,
    ) {
        if let Some(existing) = found.iter_mut().find(|(e, _, _)| e.id() == el.id()) {
            if kind == SurfaceKind::Error {
                existing.1 = SurfaceKind::Error;
            }
            return;
        }
        found.push((el, kind, by.to_string()));
    }
    let usable = |el: ElementRef<'_>| is_visible(el) && !is_excluded(el);
    let status_kind = if logged_in {
        SurfaceKind::Notice
    } else {
        SurfaceKind::Error
    };
    let grouped = &spec.surfaces.grouped;
    for (group, list, kind) in [
        (&grouped.error, &spec.surfaces.error, SurfaceKind::Error),
        (&grouped.status, &spec.surfaces.status, status_kind),
        (&grouped.notice, &spec.surfaces.notice, SurfaceKind::Notice),
    ] {
        let Some(group) = group else { continue };
        for el in snapshot
            .html
            .select(&group.selector)
            .filter(|el| usable(*el))
        {
            // Which selector of the list found it, for `classify --explain`.
            let by = list
                .iter()
                .find(|css| css.selector.matches(&el))
                .map_or(group.source.as_str(), |css| css.source.as_str());
            add(el, kind, by, &mut found);
        }
    }
    // Field hints: what an invalid field points to.
    for field in snapshot.html.select(&INVALID_FIELDS.selector) {
        for attr in ["aria-describedby", "aria-errormessage"] {
            for id in field
                .value()
                .attr(attr)
                .unwrap_or_default()
                .split_whitespace()
            {
                if let Some(hint) = snapshot.by_id(id).filter(|el| usable(*el)) {
                    add(hint, SurfaceKind::Error, attr, &mut found);
                }
            }
        }
    }
    // One message per outermost surface short enough to be a message.
    let texts: Vec<String> = found.iter().map(|(el, _, _)| element_text(*el)).collect();
    let ids: Vec<ego_tree::NodeId> = found.iter().map(|(el, _, _)| el.id()).collect();
    let mut out = Vec::new();
    for (i, (el, kind, by)) in found.iter().enumerate() {
        let text = &texts[i];
        if text.is_empty() || text.chars().count() > MAX_MESSAGE {
            continue;
        }
        let inside_a_message = el.ancestors().any(|a| {
            ids.iter()
                .position(|id| *id == a.id())
                .is_some_and(|j| !texts[j].is_empty() && texts[j].chars().count() <= MAX_MESSAGE)
        });
        if inside_a_message {
            continue;
        }
        // A message that contains an error surface is an error message.
        let kind = if *kind == SurfaceKind::Notice
            && found.iter().any(|(inner, k, _)| {
                *k == SurfaceKind::Error && inner.ancestors().any(|a| a.id() == el.id())
            }) {
            SurfaceKind::Error
        } else {
            *kind
        };
        out.push(read(lexicon, kind, by, text.clone()));
    }
    let title = snapshot.title();
    if !title.is_empty() {
        out.push(read(lexicon, SurfaceKind::Notice, "title", title));
    }
    out
}

/// On a logged-in page a login concept still explains the message; `decided` drops it.
fn read(lexicon: &Lexicon, kind: SurfaceKind, by: &str, text: String) -> Surface {
    let hits = lexicon.scan(&text);
    let explained = explains(lexicon, kind, &text, &hits);
    Surface {
        kind,
        found_by: by.to_string(),
        text,
        hits,
        explained,
    }
}

/// A message is explained by any outcome concept in it. Neutral concepts ("we sent a code")
/// explain an error box only sentence by sentence: "We've emailed you a link" must not excuse
/// "this password can no longer be used" standing before it.
fn explains(lexicon: &Lexicon, kind: SurfaceKind, text: &str, hits: &[Hit]) -> bool {
    if hits.iter().any(|h| h.concept.outcome().is_some()) {
        return true;
    }
    if hits.is_empty() || kind == SurfaceKind::Notice {
        return !hits.is_empty();
    }
    text.split(['.', '!', '?', '。', '！', '？', '\n'])
        // A sentence worth explaining: more than three words, or (unspaced scripts) a dozen
        // letters.
        .filter(|sentence| {
            sentence.split_whitespace().count() > 3
                || sentence.chars().filter(|c| c.is_alphanumeric()).count() >= 12
        })
        .all(|sentence| !lexicon.scan(sentence).is_empty())
}

static INVALID_FIELDS: std::sync::LazyLock<Css> = std::sync::LazyLock::new(|| {
    crate::provider::spec::parse_css("[aria-invalid=true]").expect("static selector")
});

/// The outcomes the surfaces' concepts decide (`logged_in` pages drop login concepts).
pub fn decided(surface: &Surface, logged_in: bool) -> impl Iterator<Item = (Outcome, &Hit)> + '_ {
    surface.hits.iter().filter_map(move |hit| {
        if logged_in && hit.concept.is_about_login() {
            return None;
        }
        hit.concept.outcome().map(|o| (o, hit))
    })
}

/// The vendor walls on the page.
/// `in_page`: a page rule recognises the page (a wall shows inside the portal, not instead of it).
pub fn walls(walls: &[Wall], snapshot: &Snapshot, in_page: bool) -> Vec<WallHit> {
    let mut sources: Option<String> = None;
    let mut text: Option<(String, bool)> = None;
    let mut out = Vec::new();
    for wall in walls {
        let fires = wall.marks.iter().any(|mark| {
            if let Some(css) = &mark.css {
                if !snapshot.has(css) {
                    return false;
                }
            }
            if let Some(src) = &mark.src {
                let sources = sources.get_or_insert_with(|| snapshot.sources());
                if !src.is_match(sources) {
                    return false;
                }
            }
            if mark.text.is_some() || mark.small {
                let (text, small) = text.get_or_insert_with(|| {
                    let body = snapshot.page_text();
                    let small = body.chars().count() < SMALL_PAGE;
                    (format!("{}\n{}", snapshot.title(), body), small)
                });
                if mark.small && !*small {
                    return false;
                }
                if let Some(re) = &mark.text {
                    if !re.is_match(text) {
                        return false;
                    }
                }
            }
            true
        });
        if fires {
            let message = wall
                .message
                .iter()
                .find_map(|css| {
                    snapshot
                        .visible(css)
                        .map(element_text)
                        .find(|t| !t.is_empty())
                })
                .or_else(|| Some(snapshot.title()).filter(|t| !t.is_empty()));
            out.push(WallHit {
                vendor: wall.vendor.clone(),
                outcome: wall.in_page.filter(|_| in_page).unwrap_or(wall.outcome),
                message,
            });
        }
    }
    out
}

/// A store's state from its status text (or, without a status column, its own words).
pub fn store_state(lexicon: &Lexicon, status: &str) -> Option<StoreState> {
    let hits = lexicon.scan(status);
    let says = |c: Concept| hits.iter().any(|h| h.concept == c);
    if says(Concept::StoreInactive) || says(Concept::RestaurantInactive) {
        Some(StoreState::Inactive)
    } else if says(Concept::StorePaused) {
        Some(StoreState::Paused)
    } else if says(Concept::StoreClosed) {
        Some(StoreState::Closed)
    } else if says(Concept::StoreActive) {
        Some(StoreState::Active)
    } else {
        None
    }
}
