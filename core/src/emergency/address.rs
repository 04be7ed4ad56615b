//! `allow_ips` entries: an address or a CIDR range, IPv4 or IPv6.

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    network: IpAddr,
    prefix: u8,
}

impl AddressRange {
    /// `10.0.0.0/24`, `10.0.0.7`, `::1`, `fd00::/8`. Host bits set below the prefix are refused
    /// (`10.0.0.7/24` is a typo for something, and guessing widens access).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or CIDR range"))?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits && !p.to_string().is_empty())
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {bits}"))?,
        };
        let range = Self { network, prefix };
        if range.masked(network) != Some(network) {
            return Err(format!("`{text}` has host bits set below its prefix"));
        }
        Ok(range.unmapped())
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.masked(ip) == Some(self.network)
    }

    /// An IPv4-mapped range (`::ffff:10.0.0.0/104`) as the IPv4 range it is: `contains` reads
    /// a mapped client address as IPv4, so a range left in IPv6 would never contain any.
    /// Prefixes under 96 cannot be mapped (their host bits cover `ffff`, refused above).
    fn unmapped(self) -> Self {
        match self.network {
            IpAddr::V6(v6) if self.prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => Self {
                    network: IpAddr::V4(v4),
                    prefix: self.prefix - 96,
                },
                None => self,
            },
            _ => self,
        }
    }

    fn masked(&self, ip: IpAddr) -> Option<IpAddr> {
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(v4)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                Some(IpAddr::V4((u32::from(v4) & mask).into()))
            }
            (IpAddr::V6(_), IpAddr::V6(v6)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                Some(IpAddr::V6((u128::from(v6) & mask).into()))
            }
            _ => None,
        }
    }
}
