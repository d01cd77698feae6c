//! The sandbox portal: every provider with recorded pages, served as a stateful fake portal under
//! `/<provider>/<host key>/<path>`, driven by the scenario accounts of `sandbox.toml`.

mod drive;
mod http;
mod merchant;
pub mod script;

pub use drive::{run_card, run_card_through_queue};
pub use merchant::{MerchantAnswer, SimulatedMerchant};

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{any, get};
use axum::{Json, Router};

use crate::kit::fixtures::{self, Fixture};
use crate::provider::{FileTree, HostMapError, PortalHosts, ProviderSpec, Registry};
use script::{Delivery, SandboxScript, Scenario, ScenarioCard};

/// One provider's fake portal.
struct Portal {
    spec: Arc<ProviderSpec>,
    script: SandboxScript,
    pages: HashMap<String, Fixture>,
}

impl Portal {
    /// The sandbox path (under `/<provider>`) a recorded page is served at, without its query.
    fn path_of(&self, case: &str) -> (String, String) {
        let page = &self.pages[case];
        let (host, rest) = self.spec.locate(&page.expected.url, &PortalHosts::real());
        let (path, query) = rest
            .split_once('?')
            .map_or((rest.as_str(), ""), |(p, q)| (p, q));
        (
            format!("/{}{}", host.unwrap_or_default(), path),
            query.to_string(),
        )
    }

    /// The host key a recorded page lives on.
    fn host_of(&self, case: &str) -> Option<String> {
        self.spec
            .locate(&self.pages[case].expected.url, &PortalHosts::real())
            .0
    }

    /// Every host key a redirect or handoff names must be one of the spec's hosts.
    fn check_hosts(&self) -> Result<(), String> {
        let script = &self.script;
        let named = script
            .redirects
            .iter()
            .flat_map(|r| [r.from.as_str(), r.to.as_str()])
            .chain(script.handoffs.iter().map(|h| h.via.as_str()))
            .filter_map(|t| script::split_host_path(t).map(|(host, _)| host))
            .chain(
                script
                    .handoffs
                    .iter()
                    .flat_map(|h| [h.from_host.as_str(), h.to_host.as_str()]),
            );
        for host in named {
            if !self.spec.hosts.contains_key(host) {
                return Err(format!(
                    "{}/sandbox.toml: host `{host}` is not in the spec's [hosts]",
                    self.spec.id
                ));
            }
        }
        Ok(())
    }

    /// A `host_key:/path` template filled in for this session: the path under `/<provider>`
    /// (`/<host>/<path>?<query>`).
    fn location(&self, target: &str, visit: &Visit) -> String {
        let (host, path) = script::split_host_path(target).expect("validated at load");
        let mut out = String::new();
        let mut rest = path;
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            out.push_str(&rest[..start]);
            let name = &rest[start + 1..start + len];
            if name == "random" {
                out.push_str(&format!("{:032x}", rand::random::<u128>()));
            } else if let Some(param) = name.strip_prefix("query.") {
                let value = visit.arrived_with(param).unwrap_or_default();
                out.extend(url::form_urlencoded::byte_serialize(value.as_bytes()));
            } else {
                out.push_str(&rest[start..=start + len]);
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        format!("/{host}{out}")
    }

    /// Where the browser finds a path under `/<provider>`.
    fn absolute(&self, under: &str) -> String {
        format!("/{}{under}", self.spec.id)
    }

    fn scenario_for(&self, username: &str) -> Option<usize> {
        let scenarios = &self.script.scenarios;
        scenarios
            .iter()
            .position(|s| !s.unknown && s.username.eq_ignore_ascii_case(username.trim()))
            .or_else(|| scenarios.iter().position(|s| s.unknown))
    }
}

#[derive(Default)]
struct Visit {
    current: String,
    /// As typed: two-step logins post the password without it.
    username: Option<String>,
    scenario: Option<usize>,
    step: usize,
    /// The fresh code this login attempt was sent.
    issued_code: Option<String>,
    /// The query string the session arrived with on the entry page.
    entry_query: String,
    /// A handoff under way: the path (under `/<provider>`) the browser was sent through, and the
    /// query parameters it must carry back unchanged.
    handoff: Option<(String, Vec<(String, String)>)>,
}

impl Visit {
    fn arrived_with(&self, param: &str) -> Option<String> {
        url::form_urlencoded::parse(self.entry_query.as_bytes())
            .find(|(k, _)| k == param)
            .map(|(_, v)| v.into_owned())
    }
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// A code the portal "sends" once the response is on its way.
struct Outgoing {
    delivery: Delivery,
    provider: String,
    username: String,
    code: String,
}

/// Where the sandbox appends code emails: one IMAP user per scenario username, one password.
#[derive(Debug, Clone)]
pub struct MailDelivery {
    pub host: String,
    pub port: u16,
    pub ca_file: Option<std::path::PathBuf>,
    pub password: String,
}

/// The host map that points every real origin of `specs` at a sandbox served at `base`
/// (`http://HOST:PORT`): host `K` of provider `P` is at `base/P/K`. This layout is the sandbox's
/// alone; the product only ever sees the map.
pub fn portal_hosts(registry: &Registry, base: &str) -> Result<PortalHosts, HostMapError> {
    hosts_of(registry.supported().map(|spec| spec.as_ref()), base)
}

fn hosts_of<'a>(
    specs: impl IntoIterator<Item = &'a ProviderSpec>,
    base: &str,
) -> Result<PortalHosts, HostMapError> {
    let base = base.trim_end_matches('/');
    let mut hosts = PortalHosts::real();
    for spec in specs {
        for (key, origin) in &spec.hosts {
            hosts.insert(origin, &format!("{base}/{}/{key}", spec.id))?;
        }
    }
    Ok(hosts)
}

/// The portals and everything the sandbox remembers between requests.
pub struct Sandbox {
    portals: BTreeMap<String, Portal>,
    visits: Mutex<HashMap<String, Visit>>,
    attempts: Mutex<BTreeMap<String, LoginAttempts>>,
    /// The last code sent to each `provider/username`, whatever the channel (the SMS "phone").
    issued: Mutex<BTreeMap<String, (String, std::time::Instant)>>,
    /// What happened to an account outside our product since its scenario was written.
    changes: Mutex<HashMap<String, AccountChange>>,
    mail: Option<MailDelivery>,
}

/// A change made in the portal itself, for re-check tests: the merchant followed the external
/// steps (the account now behaves like another scenario), or changed the password there.
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    pub scenario: Option<String>,
    pub password: Option<String>,
}

/// What the sandbox saw of one account's logins: what a platform's lockout counter would see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoginAttempts {
    /// Forms that carried the password.
    pub submitted: u32,
    /// Of those, the ones with a wrong password (what locks accounts).
    pub failed: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("sandbox: {0}")]
pub struct SandboxError(String);

impl Sandbox {
    /// Builds a portal for every supported provider that has recorded pages (in `recorded`) and a
    /// script.
    pub fn from_registry(
        registry: &Registry,
        recorded: &FileTree,
    ) -> Result<Sandbox, SandboxError> {
        let mut portals = BTreeMap::new();
        for spec in registry.supported() {
            let pages = fixtures::load(recorded, &spec.id).map_err(SandboxError)?;
            let Some(script) =
                SandboxScript::load(recorded, &spec.id, &pages).map_err(SandboxError)?
            else {
                continue;
            };
            let pages = pages.into_iter().map(|p| (p.case.clone(), p)).collect();
            let portal = Portal {
                spec: spec.clone(),
                script,
                pages,
            };
            portal.check_hosts().map_err(SandboxError)?;
            portals.insert(spec.id.clone(), portal);
        }
        Ok(Sandbox {
            portals,
            visits: Mutex::default(),
            attempts: Mutex::default(),
            issued: Mutex::default(),
            changes: Mutex::default(),
            mail: None,
        })
    }

    /// Delivers code emails into a real IMAP server.
    pub fn with_mail(mut self, mail: MailDelivery) -> Sandbox {
        self.mail = Some(mail);
        self
    }

    /// The last code the portal sent this account (what the merchant's phone or inbox shows).
    pub fn issued_code(&self, provider: &str, username: &str) -> Option<String> {
        self.issued
            .lock()
            .expect("issued lock")
            .get(&account_key(provider, username))
            .map(|(code, _)| code.clone())
    }

    /// When the last code reached the merchant (for "code available → paired" timings).
    pub fn issued_at(&self, provider: &str, username: &str) -> Option<std::time::Instant> {
        self.issued
            .lock()
            .expect("issued lock")
            .get(&account_key(provider, username))
            .map(|(_, at)| *at)
    }

    /// Sends a code the way the scenario says: always recorded, appended to IMAP for email.
    async fn send(&self, out: Outgoing) {
        self.issued.lock().expect("issued lock").insert(
            account_key(&out.provider, &out.username),
            (out.code.clone(), std::time::Instant::now()),
        );
        let (Delivery::Email, Some(mail)) = (out.delivery, &self.mail) else {
            return;
        };
        let Some(template) = self
            .portals
            .get(&out.provider)
            .and_then(|p| p.script.email.as_ref())
        else {
            return;
        };
        let message = code_email(template, &out.username, &out.code);
        let config = crate::codes::MailboxConfig {
            host: mail.host.clone(),
            port: mail.port,
            username: out.username.clone(),
            password: secrecy::SecretString::from(mail.password.clone()),
            ca_file: mail.ca_file.clone(),
            folder: "INBOX".into(),
        };
        match crate::kit::mailbox::deliver(&config, message.as_bytes()).await {
            // The code is available once it is in the mailbox.
            Ok(()) => {
                let key = account_key(&out.provider, &out.username);
                if let Some(entry) = self.issued.lock().expect("issued lock").get_mut(&key) {
                    entry.1 = std::time::Instant::now();
                }
            }
            Err(error) => tracing::warn!(%error, "sandbox could not deliver a code email"),
        }
    }

    /// Where this sandbox, served at `base` (`http://HOST:PORT`), serves its portals' hosts.
    pub fn portal_hosts(&self, base: &str) -> PortalHosts {
        hosts_of(self.portals.values().map(|p| p.spec.as_ref()), base)
            .expect("the sandbox's own address is a URL")
    }

    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.portals.keys().map(String::as_str)
    }

    /// Every scenario account of every portal.
    pub fn scenarios(&self) -> Vec<ScenarioCard> {
        self.portals
            .iter()
            .flat_map(|(id, portal)| portal.script.scenarios.iter().map(|s| s.card(id)))
            .collect()
    }

    pub fn scenario(&self, provider: &str, name: &str) -> Option<&Scenario> {
        self.portals
            .get(provider)?
            .script
            .scenarios
            .iter()
            .find(|s| s.name == name)
    }

    /// From now on `provider/username` behaves as `change` says (see [`AccountChange`]).
    pub fn change_account(&self, provider: &str, username: &str, change: AccountChange) {
        self.changes
            .lock()
            .expect("changes lock")
            .insert(account_key(provider, username), change);
    }

    fn change_of(&self, provider: &str, username: &str) -> AccountChange {
        self.changes
            .lock()
            .expect("changes lock")
            .get(&account_key(provider, username))
            .cloned()
            .unwrap_or_default()
    }

    /// Login attempts seen for `provider/username` (for lockout tests).
    pub fn attempts(&self, provider: &str, username: &str) -> LoginAttempts {
        self.attempts
            .lock()
            .expect("attempts lock")
            .get(&account_key(provider, username))
            .copied()
            .unwrap_or_default()
    }

    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/", get(http::index))
            .route(
                "/_sandbox/scenarios",
                get(|State(s): State<Arc<Sandbox>>| async move { Json(s.scenarios()) }),
            )
            .route(
                "/_sandbox/attempts",
                get(|State(s): State<Arc<Sandbox>>| async move {
                    Json(s.attempts.lock().expect("attempts lock").clone())
                }),
            )
            .route("/{provider}/{*rest}", any(http::portal_request))
            .with_state(self)
    }

    /// Serves on `addr` until the task is dropped; returns the bound address.
    pub async fn serve(
        self: Arc<Self>,
        addr: &str,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        use axum::serve::ListenerExt;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        // Headers and body leave in separate writes: without NODELAY each page stalls ~40 ms.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((bound, task))
    }
}

fn account_key(provider: &str, username: &str) -> String {
    format!("{provider}/{}", username.trim().to_lowercase())
}

/// A realistic provider email: multipart with a plain and an HTML part.
fn code_email(template: &script::EmailTemplate, to: &str, code: &str) -> String {
    let html = template.html.replace("{code}", code);
    let text: String = {
        let without_tags = regex::Regex::new(r"<[^>]+>")
            .expect("static regex")
            .replace_all(&html, " ");
        without_tags
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let boundary = format!("=_sandbox_{:016x}", rand::random::<u64>());
    let date = chrono::Utc::now().to_rfc2822();
    format!(
        "From: {from}\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id:x}@sandbox.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
         --{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--{boundary}--\r\n",
        from = template.from,
        subject = template.subject.replace("{code}", code),
        id = rand::random::<u64>(),
    )
}
