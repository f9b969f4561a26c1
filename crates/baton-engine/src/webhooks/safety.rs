//! Where webhooks may be sent. In the `production` environment endpoint URLs must be
//! `https` and must not reach loopback, private, link-local, shared, multicast or cloud
//! metadata addresses, unless the operator's allow-list (`webhooks.allowed_hosts`: host
//! names, addresses or CIDRs) names them. The `sandbox` environment takes `http` and any
//! address (`http://localhost` for development) except link-local and metadata addresses
//! (`169.254.0.0/16`, `fe80::/10`), which no environment reaches.
//!
//! An IPv6 address is judged on itself and on every IPv4 address it embeds (mapped,
//! compatible, NAT64, 6to4, Teredo), since those reach the IPv4 host. The same rules
//! apply to tenants' SMTP hosts and SMS gateways.
//!
//! Addresses are checked when an endpoint is saved and again when a delivery connects:
//! the HTTP client resolves names through [`CheckedResolver`], which hands the connector
//! only addresses that pass, so a name re-pointed after the check (DNS rebinding) does
//! not reach an internal service.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use baton_domain::{Environment, Problem};
use ipnet::IpNet;
use reqwest::Url;

/// The operator's exceptions to the address rules.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    /// Host names allowed whatever they resolve to (lower case).
    pub hosts: Vec<String>,
    /// Networks whose addresses are allowed.
    pub networks: Vec<IpNet>,
}

impl AllowList {
    /// Parses `webhooks.allowed_hosts` entries: a CIDR, an address, or a host name.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut list = AllowList::default();
        for entry in entries {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            if let Ok(net) = entry.parse::<IpNet>() {
                list.networks.push(net);
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                list.networks.push(IpNet::from(ip));
            } else if entry.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
                list.hosts.push(entry.to_ascii_lowercase());
            } else {
                return Err(format!("webhooks.allowed_hosts: {entry:?} is neither a host name, an address nor a CIDR"));
            }
        }
        Ok(list)
    }

    fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(&ip))
    }
}

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The rules of one deployment.
#[derive(Debug, Clone)]
pub struct UrlPolicy {
    pub environment: Environment,
    pub allow: AllowList,
}

const MAX_URL_LEN: usize = 2048;

fn invalid(message: &'static str) -> Problem {
    Problem::invalid_field("INVALID_URL", "url", message)
}

fn not_allowed(message: &'static str) -> Problem {
    Problem::invalid_field("URL_NOT_ALLOWED", "url", message)
}

/// The IPv4 address an IPv6 address stands for or carries to: IPv4-mapped
/// (`::ffff:0:0/96`), IPv4-compatible (`::/96`, deprecated but still routed by some
/// stacks), NAT64's well-known prefix (`64:ff9b::/96`), 6to4 (`2002::/16`) and Teredo
/// (`2001::/32`, whose client address is stored inverted). A judgement of an IPv6
/// address must cover each of these, or `[::ffff:169.254.169.254]` walks past it.
pub(crate) fn embedded_ipv4(v6: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return vec![v4];
    }
    if s[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback() {
        return vec![low]; // IPv4-compatible
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return vec![low]; // NAT64 well-known prefix
    }
    if s[0] == 0x2002 {
        return vec![Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8)];
        // 6to4
    }
    if s[0] == 0x2001 && s[1] == 0 {
        // Teredo: the server's address, then the client's (inverted).
        let server = Ipv4Addr::new((s[2] >> 8) as u8, s[2] as u8, (s[3] >> 8) as u8, s[3] as u8);
        let client = Ipv4Addr::from(!u32::from(low));
        return vec![server, client];
    }
    Vec::new()
}

/// `ip` and every IPv4 address it embeds: what a judgement must look at.
fn faces(ip: IpAddr) -> Vec<IpAddr> {
    let mut out = vec![ip];
    if let IpAddr::V6(v6) = ip {
        out.extend(embedded_ipv4(v6).into_iter().map(IpAddr::V4));
    }
    out
}

/// Link-local ranges and cloud metadata services, refused in every environment:
/// `169.254.0.0/16` holds the metadata services of most clouds (`169.254.169.254`,
/// the container credentials at `169.254.170.2`, the resolver at `169.254.169.253`),
/// and `fe80::/10` reaches the same hosts over IPv6.
fn is_metadata(ip: IpAddr) -> bool {
    faces(ip).into_iter().any(|ip| match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4 == Ipv4Addr::new(100, 100, 100, 200),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80 || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    })
}

/// Addresses that are not on the public internet, judged on every address `ip`
/// embeds as well as on `ip` itself.
fn is_internal(ip: IpAddr) -> bool {
    faces(ip).into_iter().any(|ip| match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space 100.64.0.0/10
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18.0.0/15
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // NAT64 local use 64:ff9b:1::/48
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0100 && s[1..4] == [0; 3]) // discard-only 100::/64
        }
    })
}

impl UrlPolicy {
    /// The addresses `host` resolves to that a connection may use, in the resolver's
    /// order. The error is [`Blocked`] when it resolves only to refused addresses, the
    /// resolver's own when it does not resolve. A literal address is judged as it is.
    pub(crate) async fn resolve_allowed(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, BoxError> {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port)).await?.collect();
        let allowed: Vec<SocketAddr> = resolved.into_iter().filter(|a| self.address_allowed(&host, a.ip())).collect();
        if allowed.is_empty() {
            return Err(Box::new(Blocked(host)));
        }
        Ok(allowed)
    }

    /// Whether a delivery may connect to `ip` for `host`.
    pub fn address_allowed(&self, host: &str, ip: IpAddr) -> bool {
        if self.allow.allows_host(host) || faces(ip).into_iter().any(|ip| self.allow.allows_ip(ip)) {
            return true;
        }
        if is_metadata(ip) {
            return false;
        }
        match self.environment {
            Environment::Sandbox => true,
            Environment::Production => !is_internal(ip),
        }
    }

    /// Parses and checks an endpoint URL as written (scheme, shape, literal addresses).
    pub fn parse(&self, raw: &str) -> Result<Url, Problem> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(invalid("An endpoint URL is required."));
        }
        if raw.len() > MAX_URL_LEN {
            return Err(invalid("The URL is longer than 2048 characters."));
        }
        let url = Url::parse(raw).map_err(|_| invalid("The URL is not a valid absolute URL."))?;
        match url.scheme() {
            "https" => {}
            "http" if self.environment == Environment::Sandbox => {}
            "http" => return Err(not_allowed("Endpoint URLs must use https in the production environment.")),
            _ => return Err(invalid("The URL must use https (or http in the sandbox environment).")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("The URL has no host."));
        }
        if url.fragment().is_some() {
            return Err(invalid("The URL must not have a fragment."));
        }
        if let Some(ip) = literal_ip(&url) {
            if !self.address_allowed(&host_of(&url), ip) {
                return Err(not_allowed("The URL points at an address webhooks may not reach."));
            }
        }
        Ok(url)
    }

    /// [`Self::parse`], then (in production) resolves the host and checks every address.
    pub async fn check(&self, raw: &str) -> Result<Url, Problem> {
        let url = self.parse(raw)?;
        if self.environment == Environment::Sandbox || literal_ip(&url).is_some() {
            return Ok(url);
        }
        let host = host_of(&url);
        if self.allow.allows_host(&host) {
            return Ok(url);
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(a) => a.collect(),
            Err(_) => return Err(not_allowed("The URL's host does not resolve.")),
        };
        if addrs.is_empty() || addrs.iter().any(|a| !self.address_allowed(&host, a.ip())) {
            return Err(not_allowed("The URL's host resolves to an address webhooks may not reach."));
        }
        Ok(url)
    }
}

pub(crate) fn host_of(url: &Url) -> String {
    url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase()
}

/// The address of a URL whose host is an IP literal.
pub(crate) fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// The HTTP client's resolver: only addresses the policy allows reach the connector.
pub(crate) struct CheckedResolver(pub Arc<UrlPolicy>);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let allowed = policy.resolve_allowed(&host, 0).await?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A host that resolved only to addresses webhooks may not reach.
#[derive(Debug)]
pub(crate) struct Blocked(pub String);

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves only to addresses webhooks may not reach", self.0)
    }
}

impl std::error::Error for Blocked {}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(environment: Environment, allow: &[&str]) -> UrlPolicy {
        let allow = AllowList::parse(&allow.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        UrlPolicy { environment, allow }
    }

    #[test]
    fn production_refuses_http_and_internal_addresses() {
        let p = policy(Environment::Production, &[]);
        assert_eq!(p.parse("http://example.com/hook").unwrap_err().code, "URL_NOT_ALLOWED");
        for url in [
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://0.0.0.0/",
            "https://100.64.0.1/",
        ] {
            assert_eq!(p.parse(url).unwrap_err().code, "URL_NOT_ALLOWED", "{url}");
        }
        assert!(p.parse("https://93.184.216.34/hook").is_ok());
        assert_eq!(p.parse("ftp://example.com/").unwrap_err().code, "INVALID_URL");
        assert_eq!(p.parse("not a url").unwrap_err().code, "INVALID_URL");
        assert_eq!(p.parse("https://").unwrap_err().code, "INVALID_URL");
        assert_eq!(p.parse("https://example.com/#frag").unwrap_err().code, "INVALID_URL");
    }

    #[test]
    fn the_allow_list_admits_named_networks_and_hosts() {
        let p = policy(Environment::Production, &["10.0.0.0/8", "hooks.internal"]);
        assert!(p.parse("https://10.1.2.3/").is_ok());
        assert!(p.parse("https://192.168.1.1/").is_err());
        assert!(p.address_allowed("hooks.internal", "192.168.1.1".parse().unwrap()));
        assert!(AllowList::parse(&["not/a host".to_string()]).is_err());
    }

    #[test]
    fn sandbox_takes_localhost_but_not_metadata() {
        let p = policy(Environment::Sandbox, &[]);
        assert!(p.parse("http://localhost:8080/hook").is_ok());
        assert!(p.parse("http://127.0.0.1:8080/hook").is_ok());
        assert!(p.parse("http://[::1]:8080/hook").is_ok());
        assert!(p.parse("http://[::ffff:127.0.0.1]:8080/hook").is_ok(), "loopback stays reachable in sandbox");
        assert!(p.parse("https://93.184.216.34/hook").is_ok());
        assert_eq!(p.parse("http://169.254.169.254/").unwrap_err().code, "URL_NOT_ALLOWED");
    }

    /// Every spelling of a link-local or metadata address, refused in both environments.
    const METADATA_SPELLINGS: &[&str] = &[
        "169.254.169.254",
        "169.254.170.2",            // container credentials
        "169.254.169.253",          // cloud resolver
        "169.254.0.1",              // anywhere in 169.254.0.0/16
        "[::ffff:169.254.169.254]", // IPv4-mapped
        "[::ffff:a9fe:a9fe]",
        "[::a9fe:a9fe]",                          // IPv4-compatible
        "[64:ff9b::a9fe:a9fe]",                   // NAT64
        "[2002:a9fe:a9fe::]",                     // 6to4
        "[2001:0:a9fe:a9fe::1]",                  // Teredo server
        "[2001:0:4136:e378:8000:63bf:5601:5601]", // Teredo client 169.254.169.254, inverted
        "[fe80::a9fe:a9fe]",                      // IPv6 link-local
        "[fe80::1]",
        "[fd00:ec2::254]",
        "100.100.100.200",
    ];

    #[test]
    fn link_local_and_metadata_addresses_are_refused_in_every_environment_however_spelt() {
        for environment in [Environment::Sandbox, Environment::Production] {
            let p = policy(environment, &[]);
            for host in METADATA_SPELLINGS {
                let url = format!("https://{host}/latest/meta-data");
                assert_eq!(p.parse(&url).unwrap_err().code, "URL_NOT_ALLOWED", "{environment:?} {url}");
            }
        }
    }

    #[test]
    fn production_judges_the_ipv4_an_ipv6_address_embeds() {
        let p = policy(Environment::Production, &[]);
        for host in [
            "[::ffff:7f00:1]",
            "[::7f00:1]",                             // IPv4-compatible 127.0.0.1
            "[::a00:1]",                              // IPv4-compatible 10.0.0.1
            "[2002:7f00:1::]",                        // 6to4 of 127.0.0.1
            "[2002:c0a8:101::1]",                     // 6to4 of 192.168.1.1
            "[2001:0:7f00:1::]",                      // Teredo server 127.0.0.1
            "[2001:0:4136:e378:8000:63bf:80ff:fffe]", // Teredo client 127.0.0.1, inverted
            "[64:ff9b::a00:1]",                       // NAT64 of 10.0.0.1
            "[64:ff9b:1::1]",                         // NAT64 local use
            "[fec0::1]",
        ] {
            let url = format!("https://{host}/hook");
            assert_eq!(p.parse(&url).unwrap_err().code, "URL_NOT_ALLOWED", "{url}");
        }
        // Public IPv4 behind the same prefixes is the public host.
        for host in ["[2002:5db8:d822::1]", "[64:ff9b::5db8:d822]", "[::ffff:93.184.216.34]"] {
            let url = format!("https://{host}/hook");
            assert!(p.parse(&url).is_ok(), "{url}");
        }
    }

    #[test]
    fn embedded_addresses_are_read_from_each_prefix() {
        let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(embedded_ipv4(v6("::ffff:1.2.3.4")), vec![v4("1.2.3.4")]);
        assert_eq!(embedded_ipv4(v6("::1.2.3.4")), vec![v4("1.2.3.4")]);
        assert_eq!(embedded_ipv4(v6("64:ff9b::1.2.3.4")), vec![v4("1.2.3.4")]);
        assert_eq!(embedded_ipv4(v6("2002:102:304::")), vec![v4("1.2.3.4")]);
        // RFC 4380's example: server 65.54.227.120, client 192.0.2.45.
        assert_eq!(
            embedded_ipv4(v6("2001:0:4136:e378:8000:63bf:3fff:fdd2")),
            vec![v4("65.54.227.120"), v4("192.0.2.45")]
        );
        assert!(embedded_ipv4(v6("::1")).is_empty());
        assert!(embedded_ipv4(v6("::")).is_empty());
        assert!(embedded_ipv4(v6("2606:4700::1111")).is_empty());
    }

    #[tokio::test]
    async fn resolving_keeps_only_allowed_addresses() {
        let sandbox = policy(Environment::Sandbox, &[]);
        let addrs = sandbox.resolve_allowed("127.0.0.1", 25).await.unwrap();
        assert_eq!(addrs, vec!["127.0.0.1:25".parse().unwrap()]);
        assert!(sandbox.resolve_allowed("169.254.169.254", 25).await.is_err());
        assert!(sandbox.resolve_allowed("[::ffff:169.254.169.254]", 25).await.is_err());
        let production = policy(Environment::Production, &[]);
        assert!(production.resolve_allowed("localhost", 25).await.is_err());
    }
}
