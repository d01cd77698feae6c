//! Which network addresses the worker may connect to on an API caller's behalf (webhook endpoints,
//! code mailboxes). An API token must not be a way into the operator's own network, so by default
//! only public unicast addresses are reachable: loopback, private, link-local, shared (CGNAT),
//! cloud metadata, multicast, broadcast, documentation and other reserved ranges are refused, in
//! every IPv6 spelling that embeds one (IPv4-mapped, IPv4-compatible, NAT64, 6to4). An operator
//! can allow ranges (`serve --allow-private-hosts CIDR,..`) or everything
//! (`--allow-host-network`).
//!
//! The check runs on the addresses a name resolves to, when a setting is made and again on every
//! connection (to the checked address itself), so a name that resolves to a public address once
//! and to 127.0.0.1 later (DNS rebinding) is still refused.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
pub use ipnet::IpNet;

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    Unspecified,
    Loopback,
    Private,
    /// 100.64.0.0/10, carrier-grade NAT.
    Shared,
    LinkLocal,
    /// The cloud instance metadata service (credentials live there).
    Metadata,
    Multicast,
    Broadcast,
    Documentation,
    /// Benchmarking, protocol assignments, deprecated or unassigned space.
    Reserved,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Blocked::Unspecified => "unspecified",
            Blocked::Loopback => "loopback",
            Blocked::Private => "private",
            Blocked::Shared => "shared (CGNAT)",
            Blocked::LinkLocal => "link-local",
            Blocked::Metadata => "cloud metadata",
            Blocked::Multicast => "multicast",
            Blocked::Broadcast => "broadcast",
            Blocked::Documentation => "documentation",
            Blocked::Reserved => "reserved",
        })
    }
}

pub const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// AWS's IPv6 instance metadata endpoint.
pub const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// `None` for a public unicast address; otherwise the kind of address it is.
pub fn classify(ip: IpAddr) -> Option<Blocked> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Blocked> {
    use Blocked::*;
    if ip == METADATA_V4 {
        return Some(Metadata);
    }
    if ip.is_broadcast() {
        return Some(Broadcast);
    }
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        // 0.0.0.0/8: connecting to 0.0.0.0 reaches the local host on Linux.
        (0, ..) => Unspecified,
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => Private,
        (100, 64..=127, _) => Shared,
        (127, ..) => Loopback,
        (169, 254, _) => LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Documentation,
        // Protocol assignments, the 6to4 relay anycast, benchmarking.
        (192, 0, 0) | (192, 88, 99) | (198, 18..=19, _) => Reserved,
        (224..=239, ..) => Multicast,
        (240..=255, ..) => Reserved,
        _ => return None,
    })
}

/// The IPv4 address an IPv6 address carries and reaches: IPv4-mapped `::ffff:a.b.c.d`,
/// IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(low(hi, lo)),
        // `::` and `::1` are themselves, not 0.0.0.0 and 0.0.0.1.
        [0, 0, 0, 0, 0, 0, 0, 0..=1] => None,
        [0, 0, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Blocked> {
    use Blocked::*;
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    if ip == METADATA_V6 {
        return Some(Metadata);
    }
    let s = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        let compatible = s[..6] == [0; 6];
        // The deprecated IPv4-compatible form has no legitimate use: refused whatever it holds.
        return classify_v4(v4).or(compatible.then_some(Reserved));
    }
    Some(match s[0] {
        x if x & 0xfe00 == 0xfc00 => Private,   // fc00::/7 unique local
        x if x & 0xffc0 == 0xfe80 => LinkLocal, // fe80::/10
        x if x & 0xffc0 == 0xfec0 => Private,   // fec0::/10 site-local (deprecated)
        x if x & 0xff00 == 0xff00 => Multicast, // ff00::/8
        0x2001 if s[1] == 0x0db8 => Documentation,
        0x3fff if s[1] & 0xf000 == 0 => Documentation, // 3fff::/20
        // 2001::/23: protocol assignments (Teredo, benchmarking, ORCHID).
        0x2001 if s[1] < 0x0200 => Reserved,
        // Anything outside global unicast 2000::/3 (64:ff9b:1::/48 local NAT64, 100::/64...).
        x if x & 0xe000 != 0x2000 => Reserved,
        _ => return None,
    })
}

/// Which addresses the operator allows besides public ones.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allowed: Vec<IpNet>,
    anything: bool,
}

impl Policy {
    /// Public unicast addresses only: the default.
    pub fn public_only() -> Policy {
        Policy::default()
    }

    /// Public addresses and these ranges. A metadata address needs an entry naming it alone
    /// (`169.254.169.254/32`): allowing a link-local range does not open the credentials service.
    pub fn allowing(ranges: impl IntoIterator<Item = IpNet>) -> Policy {
        Policy {
            allowed: ranges.into_iter().collect(),
            anything: false,
        }
    }

    /// No check at all (`--allow-host-network`): for a worker on a trusted network or a laptop.
    pub fn host_network() -> Policy {
        Policy {
            allowed: Vec::new(),
            anything: true,
        }
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        if self.anything {
            return Ok(());
        }
        let Some(blocked) = classify(ip) else {
            return Ok(());
        };
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = self.allowed.iter().any(|net| {
            let covers = net.contains(&ip) || embedded.is_some_and(|v4| net.contains(&v4));
            covers && (blocked != Blocked::Metadata || net.prefix_len() == net.max_prefix_len())
        });
        if allowed {
            Ok(())
        } else {
            Err(blocked)
        }
    }
}

/// `CIDR` or a bare address (a single host), as `--allow-private-hosts` takes them.
pub fn parse_range(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!(
                "`{text}` is not an address range: expected CIDR such as 10.0.0.0/8 or fd00::/8"
            )
        })
}

/// Name resolution, replaceable so tests can play a rebinding DNS server.
pub trait Resolver: Send + Sync {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>>;
}

/// The system's resolver (getaddrinfo through tokio).
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let host = host.to_string();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|addr| addr.ip())
                .collect())
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReachError {
    #[error("the host resolves to an address this worker may not reach ({0})")]
    Blocked(Blocked),
    #[error("the host name does not resolve")]
    Unresolved,
}

/// Resolution bound: a validation waits this long at most.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The policy and the resolver it is applied to.
#[derive(Clone)]
pub struct Reach {
    policy: Arc<Policy>,
    resolver: Arc<dyn Resolver>,
}

impl Default for Reach {
    fn default() -> Reach {
        Reach::new(Policy::public_only())
    }
}

impl fmt::Debug for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reach")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Reach {
    pub fn new(policy: Policy) -> Reach {
        Reach {
            policy: Arc::new(policy),
            resolver: Arc::new(SystemResolver),
        }
    }

    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Reach {
        self.resolver = resolver;
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ReachError> {
        self.policy.check(ip).map_err(ReachError::Blocked)
    }

    async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, ReachError> {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        match tokio::time::timeout(LOOKUP_TIMEOUT, self.resolver.lookup(host)).await {
            Ok(Ok(addresses)) if !addresses.is_empty() => Ok(addresses),
            _ => Err(ReachError::Unresolved),
        }
    }

    /// For a setting being saved: the host resolves, and every address it has now is allowed (a
    /// name with one private address among public ones is refused outright).
    pub async fn vet(&self, host: &str) -> Result<(), ReachError> {
        self.lookup(host)
            .await?
            .into_iter()
            .try_for_each(|ip| self.check_ip(ip))
    }

    /// For a connection: the host's allowed addresses, to connect to as they are (never
    /// resolve the name again between this check and the connect).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, ReachError> {
        let resolved = self.lookup(host).await?;
        let mut refused = None;
        let allowed: Vec<IpAddr> = resolved
            .into_iter()
            .filter(|ip| match self.check_ip(*ip) {
                Ok(()) => true,
                Err(error) => {
                    refused.get_or_insert(error);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), refused) {
            (true, Some(error)) => Err(error),
            (true, None) => Err(ReachError::Unresolved),
            (false, _) => Ok(allowed),
        }
    }
}

/// reqwest asks this for every new connection, so each connect goes to a checked address. It
/// is not asked for IP-literal URLs: check those with [`Reach::check_ip`] first.
impl reqwest::dns::Resolve for Reach {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let reach = self.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses = reach.addresses(&host).await?;
            let addrs: reqwest::dns::Addrs =
                Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

static GLOBAL: RwLock<Option<Reach>> = RwLock::new(None);

/// Sets the process's policy (`serve` does, from its flags): used where no [`Reach`] is handed
/// down, such as the worker's mailbox connections.
pub fn set_global(reach: Reach) {
    *GLOBAL.write().expect("reach lock") = Some(reach);
}

/// The process's policy: public addresses only until [`set_global`] says otherwise.
pub fn global() -> Reach {
    GLOBAL
        .read()
        .expect("reach lock")
        .clone()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> Option<Blocked> {
        classify(text.parse().unwrap())
    }

    #[test]
    fn every_refused_range_is_refused_at_both_ends() {
        use Blocked::*;
        let cases: &[(&str, Blocked)] = &[
            ("0.0.0.0", Unspecified),
            ("0.255.255.255", Unspecified),
            ("10.0.0.0", Private),
            ("10.255.255.255", Private),
            ("100.64.0.0", Shared),
            ("100.127.255.255", Shared),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("169.254.0.1", LinkLocal),
            ("169.254.255.255", LinkLocal),
            ("169.254.169.254", Metadata),
            ("172.16.0.0", Private),
            ("172.31.255.255", Private),
            ("192.0.0.8", Reserved),
            ("192.0.2.1", Documentation),
            ("192.88.99.1", Reserved),
            ("192.168.0.0", Private),
            ("192.168.255.255", Private),
            ("198.18.0.0", Reserved),
            ("198.19.255.255", Reserved),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("224.0.0.1", Multicast),
            ("239.255.255.255", Multicast),
            ("240.0.0.1", Reserved),
            ("255.255.255.255", Broadcast),
            ("::", Unspecified),
            ("::1", Loopback),
            ("fc00::1", Private),
            ("fdff:ffff::1", Private),
            ("fd00:ec2::254", Metadata),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fec0::1", Private),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("2001::1", Reserved),
            ("100::1", Reserved),
            ("64:ff9b:1::1", Reserved),
        ];
        for (address, expected) in cases {
            assert_eq!(class(address), Some(*expected), "{address}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4007:80e::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(class(address), None, "{address}");
        }
    }

    #[test]
    fn ipv6_forms_embedding_a_refused_ipv4_address_are_refused() {
        use Blocked::*;
        for (address, expected) in [
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:7f00:1", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:169.254.169.254", Metadata),
            ("::ffff:100.64.0.1", Shared),
            ("::ffff:0.0.0.0", Unspecified),
            ("::127.0.0.1", Loopback),
            ("::192.168.1.1", Private),
            ("::8.8.8.8", Reserved),
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", Metadata),
            ("64:ff9b::192.168.0.1", Private),
            ("2002:7f00:1::", Loopback),
            ("2002:c0a8:101::1", Private),
        ] {
            assert_eq!(class(address), Some(expected), "{address}");
        }
    }

    #[test]
    fn the_operator_allow_list_opens_only_its_ranges() {
        let policy = Policy::allowing([
            parse_range("127.0.0.0/8").unwrap(),
            parse_range("fd12::1").unwrap(),
        ]);
        let check = |a: &str| policy.check(a.parse().unwrap());
        assert_eq!(check("127.0.0.1"), Ok(()));
        assert_eq!(check("::ffff:127.0.0.1"), Ok(()), "the mapped form too");
        assert_eq!(check("fd12::1"), Ok(()));
        assert_eq!(check("fd12::2"), Err(Blocked::Private));
        assert_eq!(check("10.0.0.1"), Err(Blocked::Private));
        assert_eq!(check("::1"), Err(Blocked::Loopback));
        assert_eq!(check("8.8.8.8"), Ok(()));
        let link_local = Policy::allowing([parse_range("169.254.0.0/16").unwrap()]);
        assert_eq!(
            link_local.check(METADATA_V4.into()),
            Err(Blocked::Metadata),
            "a range does not open the metadata service"
        );
        let metadata = Policy::allowing([parse_range("169.254.169.254").unwrap()]);
        assert_eq!(metadata.check(METADATA_V4.into()), Ok(()));
        assert_eq!(
            Policy::host_network().check("127.0.0.1".parse().unwrap()),
            Ok(())
        );
        assert!(parse_range("10.0.0.0/33").is_err());
        assert!(parse_range("localhost").is_err());
    }

    struct Fixed(Vec<IpAddr>);

    impl Resolver for Fixed {
        fn lookup(&self, _: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
            let addresses = self.0.clone();
            Box::pin(async move { Ok(addresses) })
        }
    }

    #[tokio::test]
    async fn names_are_judged_by_every_address_they_resolve_to() {
        let mixed = Fixed(vec![
            "8.8.8.8".parse().unwrap(),
            "10.0.0.1".parse().unwrap(),
        ]);
        let reach = Reach::default().with_resolver(Arc::new(mixed));
        assert_eq!(
            reach.vet("mixed.test").await,
            Err(ReachError::Blocked(Blocked::Private)),
            "validation refuses a name with any private address"
        );
        assert_eq!(
            reach.addresses("mixed.test").await,
            Ok(vec!["8.8.8.8".parse().unwrap()]),
            "a connection uses only the allowed ones"
        );
        let reach = Reach::default().with_resolver(Arc::new(Fixed(vec![])));
        assert_eq!(reach.vet("nothing.test").await, Err(ReachError::Unresolved));
        assert_eq!(
            Reach::default().vet("[::1]").await,
            Err(ReachError::Blocked(Blocked::Loopback))
        );
        assert_eq!(
            Reach::default().vet("localhost").await,
            Err(ReachError::Blocked(Blocked::Loopback)),
            "the system resolver's answer is checked"
        );
    }
}
