//! What each channel says: one batch of notices for one contact, in the contact's language, as
//! an email (HTML + plain text, grouped by platform), an SMS, or a printed ticket.

use minijinja::context;
use serde::Serialize;

use super::texts::{Direction, Language, Texts, TextsError};
use super::ticket;
use crate::outcome::{Outcome, Resolution};
use crate::queue::StoreRef;

/// One account's news, ready to be put in words.
#[derive(Debug, Clone)]
pub struct Notice {
    pub account_id: String,
    /// The platform's own name ("Uber Eats", "배달의민족" is the portal's; we use the catalog's).
    pub platform: String,
    pub stores: Vec<StoreRef>,
    pub news: News,
    /// The signed repair link for this account and alert.
    pub link: Option<String>,
}

#[derive(Debug, Clone)]
pub enum News {
    Broken {
        outcome: Outcome,
        /// The platform's own steps, when the fix is outside our product.
        steps: Vec<String>,
    },
    Recovered,
}

#[derive(Debug, Clone)]
pub struct Email {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// "Main St (Burger Co)", or with more stores "Main St (Burger Co) +2".
pub fn store_label(stores: &[StoreRef]) -> String {
    let Some(first) = stores.first() else {
        return String::new();
    };
    let one = describe(first);
    match stores.len() {
        1 => one,
        n => format!("{one} +{}", n - 1),
    }
}

fn describe(store: &StoreRef) -> String {
    match (store.location.trim(), store.brand.trim()) {
        ("", "") => store.id.clone(),
        (location, "") => location.to_string(),
        ("", brand) => brand.to_string(),
        (location, brand) => format!("{location} ({brand})"),
    }
}

#[derive(Serialize)]
struct Item {
    stores: Vec<String>,
    problem: String,
    fix: Option<String>,
    steps: Vec<String>,
    link: Option<String>,
}

#[derive(Serialize)]
struct Group {
    platform: String,
    items: Vec<Item>,
}

struct Words<'a> {
    texts: &'a Texts,
    language: &'a Language,
}

impl Words<'_> {
    fn fill(&self, key: &str, text: &str, values: minijinja::Value) -> Result<String, TextsError> {
        self.texts.fill(self.language, key, text, &values)
    }

    fn problem(&self, notice: &Notice) -> Result<String, TextsError> {
        let platform = &notice.platform;
        match &notice.news {
            News::Broken { outcome, .. } => {
                let key = outcome.to_string();
                let text = self.language.outcome.get(&key).ok_or(TextsError::Render {
                    language: self.language.language.clone(),
                    key: key.clone(),
                    reason: "no text for this outcome".into(),
                })?;
                self.fill(&key, text, context! { platform })
            }
            News::Recovered => {
                let store = store_label(&notice.stores);
                let text = &self.language.email.recovered_intro;
                self.fill("email.recovered_intro", text, context! { platform, store })
            }
        }
    }

    fn fix(&self, notice: &Notice) -> Result<Option<String>, TextsError> {
        let News::Broken { outcome, .. } = &notice.news else {
            return Ok(None);
        };
        let fix = &self.language.fix;
        let (key, text) = match outcome.decision().resolution {
            Resolution::None => return Ok(None),
            Resolution::Reconnect => ("fix.reconnect", &fix.reconnect),
            Resolution::ExternalSteps => ("fix.external_steps", &fix.external_steps),
            Resolution::RetryLater => ("fix.retry_later", &fix.retry_later),
            Resolution::ContactSupport => ("fix.contact_support", &fix.contact_support),
        };
        let platform = &notice.platform;
        self.fill(key, text, context! { platform }).map(Some)
    }

    fn short(&self, notice: &Notice) -> String {
        match &notice.news {
            News::Broken { outcome, .. } => self
                .language
                .short
                .get(outcome.category())
                .cloned()
                .unwrap_or_default(),
            News::Recovered => String::new(),
        }
    }
}

fn steps(notice: &Notice) -> Vec<String> {
    match &notice.news {
        News::Broken { steps, .. } => steps.clone(),
        News::Recovered => Vec::new(),
    }
}

/// The email for a batch: the single-store wording for one notice, the digest for several.
pub fn email(
    texts: &Texts,
    lang: &str,
    notices: &[Notice],
    link_hours: u64,
) -> Result<Email, TextsError> {
    let language = texts.get(lang);
    let words = Words { texts, language };
    let e = &language.email;
    let count = notices.len();
    let (subject, intro) = match notices {
        [one] => {
            let platform = &one.platform;
            let store = store_label(&one.stores);
            match one.news {
                News::Broken { .. } => (
                    words.fill(
                        "email.single_subject",
                        &e.single_subject,
                        context! { platform, store },
                    )?,
                    words.fill(
                        "email.single_intro",
                        &e.single_intro,
                        context! { platform, store },
                    )?,
                ),
                News::Recovered => (
                    words.fill(
                        "email.recovered_subject",
                        &e.recovered_subject,
                        context! { platform, store },
                    )?,
                    String::new(),
                ),
            }
        }
        _ => (
            words.fill(
                "email.digest_subject",
                &e.digest_subject,
                context! { count },
            )?,
            words.fill("email.digest_intro", &e.digest_intro, context! { count })?,
        ),
    };
    // Grouped by platform, in the order platforms first appear.
    let mut groups: Vec<Group> = Vec::new();
    for notice in notices {
        let item = Item {
            stores: notice.stores.iter().map(describe).collect(),
            problem: words.problem(notice)?,
            fix: words.fix(notice)?,
            steps: steps(notice),
            link: notice.link.clone(),
        };
        match groups.iter_mut().find(|g| g.platform == notice.platform) {
            Some(group) => group.items.push(item),
            None => groups.push(Group {
                platform: notice.platform.clone(),
                items: vec![item],
            }),
        }
    }
    let hours = link_hours;
    let any_link = notices.iter().any(|n| n.link.is_some());
    let link_note = if any_link {
        words.fill("email.link_note", &e.link_note, context! { hours })?
    } else {
        String::new()
    };
    let (dir, start) = match language.direction {
        Direction::Ltr => ("ltr", "left"),
        Direction::Rtl => ("rtl", "right"),
    };
    let values = context! {
        lang => &language.language,
        dir,
        start,
        subject => &subject,
        intro => &intro,
        groups,
        labels => context! {
            stores => &e.stores,
            what_happened => &e.what_happened,
            how_to_fix => &e.how_to_fix,
            button => &e.button,
        },
        link_note,
        footer => &e.footer,
    };
    Ok(Email {
        html: texts.render("email.html", &values)?,
        text: texts.render("email.txt", &values)?,
        subject,
    })
}

/// The SMS for a batch; `dashboard` is the link of a digest (several accounts, one message).
pub fn sms(
    texts: &Texts,
    lang: &str,
    notices: &[Notice],
    dashboard: Option<&str>,
) -> Result<String, TextsError> {
    let language = texts.get(lang);
    let words = Words { texts, language };
    let s = &language.sms;
    match notices {
        [one] => {
            let platform = &one.platform;
            let store = store_label(&one.stores);
            let link = one.link.clone().unwrap_or_default();
            let error = words.short(one);
            match one.news {
                News::Broken { .. } => words.fill(
                    "sms.broken",
                    &s.broken,
                    context! { platform, store, error, link },
                ),
                News::Recovered => {
                    words.fill("sms.recovered", &s.recovered, context! { platform, store })
                }
            }
        }
        _ => {
            let count = notices.len();
            let link = dashboard.unwrap_or_default();
            words.fill("sms.digest", &s.digest, context! { count, link })
        }
    }
    .map(|text| text.trim().to_string())
}

/// The ticket for a batch: every notice's platform, store, problem and fix, and the QR code of
/// the first notice's repair link (a printer prints one ticket per batch).
pub fn ticket(
    texts: &Texts,
    lang: &str,
    notices: &[Notice],
    printed_at: &str,
) -> Result<ticket::Ticket, TextsError> {
    let language = texts.get(lang);
    let words = Words { texts, language };
    let t = &language.ticket;
    let recovered = notices.iter().all(|n| matches!(n.news, News::Recovered));
    let mut rows = Vec::new();
    let mut fix_steps = Vec::new();
    for notice in notices {
        rows.push((t.platform.clone(), notice.platform.clone()));
        rows.push((t.store.clone(), store_label(&notice.stores)));
        rows.push((t.problem.clone(), words.problem(notice)?));
        if let Some(fix) = words.fix(notice)? {
            rows.push((t.fix.clone(), fix));
        }
        fix_steps.extend(steps(notice));
    }
    Ok(ticket::Ticket {
        language: language.language.clone(),
        direction: match language.direction {
            Direction::Ltr => ticket::Direction::Ltr,
            Direction::Rtl => ticket::Direction::Rtl,
        },
        title: if recovered {
            t.recovered_title.clone()
        } else {
            t.title.clone()
        },
        rows,
        steps: fix_steps,
        qr: notices.iter().find_map(|n| n.link.clone()),
        qr_caption: t.scan.clone(),
        footer: printed_at.to_string(),
    })
}
