//! Where webhooks may be sent. In the `production` environment endpoint URLs must be
//! `https` and must not reach loopback, private, link-local, shared, multicast or cloud
//! metadata addresses, unless the operator's allow-list (`webhooks.allowed_hosts`: host
//! names, addresses or CIDRs) names them. The `sandbox` environment takes `http` and any
//! address (`http://localhost` for development) except the metadata addresses.
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

/// Cloud metadata services, refused in every environment.
fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200),
        IpAddr::V6(v6) => v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    }
}

/// Addresses that are not on the public internet.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
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
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 (may embed an internal IPv4)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        }
    }
}

impl UrlPolicy {
    /// Whether a delivery may connect to `ip` for `host`.
    pub fn address_allowed(&self, host: &str, ip: IpAddr) -> bool {
        if self.allow.allows_host(host) || self.allow.allows_ip(ip) {
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
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                resolved.into_iter().filter(|a| policy.address_allowed(&host, a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(Blocked(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
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
        assert_eq!(p.parse("http://169.254.169.254/").unwrap_err().code, "URL_NOT_ALLOWED");
    }
}
