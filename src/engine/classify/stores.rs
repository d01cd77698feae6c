//! The store list of a page behind the login: each store's id, name, brand and state, and what
//! messages about one listed store mean for the list.

use scraper::ElementRef;

use super::{Candidate, Reason};
use crate::engine::reading;
use crate::engine::snapshot::{element_text, is_visible, Snapshot};
use crate::outcome::{Outcome, Store, StoreConfig, StoreState};
use crate::provider::spec::{Field, ProviderSpec};

/// A message that a listed store is inactive ("Tteokdam Sillim is under review") speaks about that
/// store, not the account: the store is marked inactive and the list decides (all inactive, or
/// not) instead of the banner.
pub(super) fn banners_about_listed_stores(candidates: &mut Vec<Candidate>, stores: &mut [Store]) {
    let inactive = Outcome::InvalidStoreConfig(StoreConfig::RestaurantInactive);
    let names_a_store: Vec<bool> = candidates
        .iter()
        .map(|candidate| {
            let about =
                candidate.outcome == inactive && matches!(candidate.reason, Reason::Concept { .. });
            let Some(message) = candidate.message.as_deref().filter(|_| about) else {
                return false;
            };
            let mut named = false;
            for store in stores.iter_mut() {
                if store.name.chars().count() >= 3 && message.contains(store.name.as_str()) {
                    store.state = Some(StoreState::Inactive);
                    named = true;
                }
            }
            named
        })
        .collect();
    // When the banners name every store, they and the list agree: the portal's words stay.
    if stores.iter().all(|s| s.state == Some(StoreState::Inactive)) {
        return;
    }
    let mut names_a_store = names_a_store.into_iter();
    candidates.retain(|_| !names_a_store.next().unwrap_or(false));
}

pub(super) fn read_stores(
    spec: &ProviderSpec,
    snapshot: &Snapshot,
    list: &crate::provider::spec::StoreList,
) -> Vec<Store> {
    snapshot
        .visible(&list.item)
        .filter_map(|item| {
            let id = field(item, &list.id)?;
            let name = field(item, &list.name).unwrap_or_default();
            let brand = list.brand.as_ref().and_then(|f| field(item, f));
            let status = list.status.as_ref().and_then(|f| field(item, f));
            let state = match &status {
                Some(status) => {
                    Some(reading::store_state(&spec.lexicon, status).unwrap_or(StoreState::Unknown))
                }
                None => {
                    // No status column: the item's own words, less its name and brand.
                    let mut words = element_text(item);
                    for known in std::iter::once(&name).chain(brand.as_ref()) {
                        if !known.is_empty() {
                            words = words.replace(known.as_str(), " ");
                        }
                    }
                    reading::store_state(&spec.lexicon, &words)
                }
            };
            Some(Store {
                id,
                name,
                brand,
                status,
                state,
            })
        })
        .collect()
}

fn field(item: ElementRef<'_>, field: &Field) -> Option<String> {
    let el = match &field.selector {
        Some(css) => item.select(&css.selector).find(|el| is_visible(*el))?,
        None => item,
    };
    let value = match &field.attr {
        Some(attr) => el.attr(attr)?.trim().to_string(),
        None => element_text(el),
    };
    Some(value).filter(|v| !v.is_empty())
}
