//! Where each portal is reached: its real origin, unless a host map points that origin elsewhere
//! (a sandbox, a recording proxy, a staging copy). The worker knows portals by the hosts their
//! specs name; only this map says otherwise, so no layout of any fake portal leaks into the product.

use std::collections::BTreeMap;
use std::fmt;

/// Real portal origins (`https://auth.uber.com`) mapped to the base URLs they are reached at
/// instead (`http://127.0.0.1:8090/ubereats/auth`). An origin not in the map is reached as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortalHosts {
    reached_at: BTreeMap<String, String>,
}

/// A host-map entry that is not `ORIGIN=URL` with an origin (no path) and an http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("portal host `{entry}`: {reason}")]
pub struct HostMapError {
    pub entry: String,
    pub reason: String,
}

impl PortalHosts {
    /// Every portal at its real origin.
    pub fn real() -> PortalHosts {
        PortalHosts::default()
    }

    pub fn is_real(&self) -> bool {
        self.reached_at.is_empty()
    }

    /// Reach `origin` at `base` instead (a later entry for the same origin replaces an earlier one).
    pub fn insert(&mut self, origin: &str, base: &str) -> Result<(), HostMapError> {
        let (origin, base) = checked(origin, base)?;
        self.reached_at.insert(origin, base);
        Ok(())
    }

    /// Parses one `ORIGIN=URL` entry (the `--portal-host` argument).
    pub fn parse_entry(entry: &str) -> Result<(String, String), HostMapError> {
        match entry.split_once('=') {
            Some((origin, base)) if !origin.is_empty() && !base.is_empty() => {
                checked(origin, base)?;
                Ok((origin.to_string(), base.to_string()))
            }
            _ => Err(HostMapError {
                entry: entry.to_string(),
                reason: "expected ORIGIN=URL".into(),
            }),
        }
    }

    /// A map from `ORIGIN=URL` entries.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<PortalHosts, HostMapError> {
        let mut hosts = PortalHosts::default();
        for entry in entries {
            let (origin, base) = PortalHosts::parse_entry(entry)?;
            hosts.insert(&origin, &base)?;
        }
        Ok(hosts)
    }

    /// Where a real origin is reached.
    pub fn reach(&self, origin: &str) -> String {
        // The common cases without parsing: no map at all, or a spec origin as the map keeps it.
        if self.reached_at.is_empty() {
            return origin.trim_end_matches('/').to_string();
        }
        if let Some(base) = self.reached_at.get(origin) {
            return base.clone();
        }
        match url::Url::parse(origin) {
            Ok(url) => self
                .reached_at
                .get(&url.origin().ascii_serialization())
                .cloned()
                .unwrap_or_else(|| origin.trim_end_matches('/').to_string()),
            Err(_) => origin.to_string(),
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.reached_at
            .iter()
            .map(|(origin, base)| (origin.as_str(), base.as_str()))
    }
}

/// An origin (scheme and host only) and an http(s) target, as the map keys and keeps them.
fn checked(origin: &str, base: &str) -> Result<(String, String), HostMapError> {
    let fail = |reason: &str| HostMapError {
        entry: format!("{origin}={base}"),
        reason: reason.to_string(),
    };
    let origin_url = url::Url::parse(origin).map_err(|_| fail("the origin is not a URL"))?;
    if origin_url.path() != "/" || origin_url.query().is_some() || origin.ends_with('/') {
        return Err(fail(
            "the origin is a scheme and host only (https://auth.uber.com)",
        ));
    }
    let base_url = url::Url::parse(base).map_err(|_| fail("the target is not a URL"))?;
    if !matches!(base_url.scheme(), "http" | "https") || base_url.query().is_some() {
        return Err(fail("the target is an http(s) URL without a query"));
    }
    Ok((
        origin_url.origin().ascii_serialization(),
        base.trim_end_matches('/').to_string(),
    ))
}

impl fmt::Display for PortalHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_real() {
            return f.write_str("the real portals");
        }
        let entries: Vec<String> = self
            .entries()
            .map(|(origin, base)| format!("{origin}={base}"))
            .collect();
        f.write_str(&entries.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_not_in_the_map_is_reached_as_it_is() {
        let mut hosts = PortalHosts::real();
        hosts
            .insert("https://auth.uber.com", "http://127.0.0.1:9/ubereats/auth/")
            .unwrap();
        assert_eq!(
            hosts.reach("https://auth.uber.com"),
            "http://127.0.0.1:9/ubereats/auth"
        );
        assert_eq!(
            hosts.reach("https://merchants.ubereats.com"),
            "https://merchants.ubereats.com"
        );
        // The default port and letter case name the same origin.
        assert_eq!(
            hosts.reach("https://AUTH.uber.com:443"),
            "http://127.0.0.1:9/ubereats/auth"
        );
    }

    #[test]
    fn entries_that_are_not_origin_equals_url_are_refused_with_the_entry_named() {
        for bad in [
            "https://auth.uber.com",
            "=http://x",
            "https://auth.uber.com/v2=http://127.0.0.1:9",
            "auth.uber.com=http://127.0.0.1:9",
            "https://auth.uber.com=ftp://127.0.0.1",
            "https://auth.uber.com=http://127.0.0.1:9/?a=b",
        ] {
            let error = PortalHosts::from_entries([bad]).unwrap_err();
            assert_eq!(
                error.entry.split('=').next(),
                bad.split('=').next(),
                "{bad}"
            );
        }
        let hosts = PortalHosts::from_entries(["https://a.example=http://127.0.0.1:1/a"]).unwrap();
        assert_eq!(hosts.to_string(), "https://a.example=http://127.0.0.1:1/a");
    }
}
