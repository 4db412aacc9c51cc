//! Where a webhook may be delivered: never to this machine, a private
//! network, a link-local or cloud metadata address, or any address that is
//! not globally routable, unless the configuration's allow-list names it.
//! Checked on every delivery after resolving the name, and the connection
//! is made to the address checked (so a name that changes its answer in
//! between cannot slip through); redirects are not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

use crate::domain::{DomainError, DomainResult};

/// Networks deliveries may reach although they are not public (e.g.
/// `127.0.0.1/32` for a receiver on the same machine, in development).
#[derive(Debug, Clone, Default)]
pub struct AllowList(pub Vec<IpNet>);

impl AllowList {
    pub fn allows(&self, address: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&address))
    }
}

/// Why an address is refused, or `None` when it is public.
pub fn forbidden(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        // 169.254.169.254 is the cloud metadata service.
        Some("a link-local (or cloud metadata) address")
    } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || a == 0 {
        Some("not a unicast address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if (a == 192 && b == 0 && c == 0) || (a == 198 && (b == 18 || b == 19)) || a >= 240 {
        Some("a reserved address")
    } else if ip.is_documentation() {
        Some("a documentation address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() || ip.is_multicast() {
        Some("not a unicast address")
    } else if first & 0xfe00 == 0xfc00 {
        // fc00::/7, unique local (fd00:ec2::254 is a metadata service).
        Some("a private (unique local) address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some("a documentation address")
    } else if first == 0x0064 && ip.segments()[1] == 0xff9b {
        // 64:ff9b::/96 translates to IPv4: check the address inside.
        let [.., g, h] = ip.segments();
        let v4 = Ipv4Addr::from(((u32::from(g)) << 16) | u32::from(h));
        forbidden_v4(v4)
    } else {
        None
    }
}

/// Resolves `host:port` and checks every address; the first allowed one
/// is where to connect, or why none may be used.
pub async fn resolve(host: &str, port: u16, allow: &AllowList) -> Result<SocketAddr, String> {
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|err| format!("the host name does not resolve: {err}"))?
            .collect(),
    };
    if addresses.is_empty() {
        return Err("the host name resolves to no address".to_owned());
    }
    // Every address must pass: a name that also resolves to a private
    // address is refused, whichever one a connection would pick.
    for address in &addresses {
        if allow.allows(address.ip()) {
            continue;
        }
        if let Some(why) = forbidden(address.ip()) {
            return Err(format!(
                "{} is {why}; deliveries go to public addresses only (see WEBHOOK_ALLOWED_NETWORKS)",
                address.ip()
            ));
        }
    }
    Ok(addresses[0])
}

/// Refuses a URL whose scheme is not `https` (or `http` when allowed).
pub fn check_scheme(url: &url::Url, allow_http: bool) -> DomainResult<()> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http => Ok(()),
        "http" => Err(DomainError::invalid(
            "url",
            "must be https:// (http:// only with WEBHOOK_ALLOW_HTTP, for development)",
        )),
        _ => Err(DomainError::invalid("url", "must be an https:// URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for refused in [
            "127.0.0.1",
            "127.8.9.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(forbidden(ip(refused)).is_some(), "{refused}");
        }
        for allowed in ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "172.32.0.1"] {
            assert!(forbidden(ip(allowed)).is_none(), "{allowed}");
        }
    }

    #[tokio::test]
    async fn resolution_checks_every_address_and_honours_the_allow_list() {
        let none = AllowList::default();
        assert!(resolve("127.0.0.1", 80, &none).await.is_err());
        assert!(resolve("localhost", 80, &none).await.is_err());
        let loopback = AllowList(vec!["127.0.0.1/32".parse().unwrap()]);
        assert_eq!(
            resolve("127.0.0.1", 8080, &loopback).await.unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert!(resolve("10.0.0.1", 80, &loopback).await.is_err());
    }
}
