//! The addresses a listener talks to, parsed once when the file is read:
//! `host:port` upstreams ([`HostPort`]), the base URL of an `http`
//! upstream ([`HttpUpstream`]) and the target of a redirect
//! ([`HttpsUrl`]). Their fields are private, so a value of these types is
//! one that parsed; the gateway connects and builds URLs from them without
//! looking at the text again.

use hyper::http::uri::Authority;
use std::fmt;

/// `host:port` with a port that is not 0 (IPv6 written `[::1]:5432`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    host: String,
    port: u16,
}

impl HostPort {
    /// Parses `host:port`; the message says what was expected.
    pub fn parse(s: &str) -> Result<HostPort, String> {
        let bad = || format!("`{s}`: expected host:port such as db.example:5432 or [::1]:5432");
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }

    /// The host, without brackets for IPv6.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (never 0).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A base URL `scheme://host[:port][/prefix]`: no user info, query or
/// fragment; the prefix without its trailing slash.
#[derive(Debug, Clone)]
struct BaseUrl {
    authority: Authority,
    prefix: String,
}

impl BaseUrl {
    fn parse(u: &str, scheme: &str) -> Result<BaseUrl, String> {
        let rest = u
            .strip_prefix(scheme)
            .and_then(|r| r.strip_prefix("://"))
            .ok_or_else(|| format!("`{u}`: expected a {scheme}:// URL"))?;
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if auth.is_empty() || auth.contains(['@', '?', '#']) {
            return Err(format!("`{u}`: expected {scheme}://host[:port][/path]"));
        }
        let authority = auth
            .parse::<Authority>()
            .map_err(|_| format!("`{u}`: `{auth}` is not a valid host[:port]"))?;
        if authority.port_u16() == Some(0) {
            return Err(format!("`{u}`: port 0 is not a port to connect to"));
        }
        if path.contains(['?', '#']) {
            return Err(format!("`{u}`: no query or fragment allowed"));
        }
        Ok(BaseUrl {
            authority,
            prefix: path.trim_end_matches('/').into(),
        })
    }
}

/// The `upstream` of an `http` listener: `http://host[:port][/prefix]`.
#[derive(Debug, Clone)]
pub struct HttpUpstream {
    url: BaseUrl,
    addr: HostPort,
}

impl HttpUpstream {
    /// Parses `http://host[:port][/prefix]`.
    pub fn parse(u: &str) -> Result<HttpUpstream, String> {
        let url = BaseUrl::parse(u, "http")?;
        let host = url.authority.host();
        let addr = HostPort {
            host: host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host)
                .to_string(),
            // Without a port the URL means HTTP's own.
            port: url.authority.port_u16().unwrap_or(80),
        };
        Ok(HttpUpstream { url, addr })
    }

    /// `host[:port]` as written: what goes in `Host` when the client sent
    /// none.
    pub fn authority(&self) -> &str {
        self.url.authority.as_str()
    }

    /// Where to connect: the host and the port, 80 when the URL has none.
    pub fn addr(&self) -> &HostPort {
        &self.addr
    }

    /// The path prefix without a trailing slash ("" for none).
    pub fn prefix(&self) -> &str {
        &self.url.prefix
    }
}

impl fmt::Display for HttpUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.url.authority, self.url.prefix)
    }
}

/// The `to` of a `redirect` listener: `https://host[:port][/prefix]`.
#[derive(Debug, Clone)]
pub struct HttpsUrl(BaseUrl);

impl HttpsUrl {
    /// Parses `https://host[:port][/prefix]`.
    pub fn parse(u: &str) -> Result<HttpsUrl, String> {
        BaseUrl::parse(u, "https").map(HttpsUrl)
    }
}

impl fmt::Display for HttpsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "https://{}{}", self.0.authority, self.0.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_takes_names_and_bracketed_ipv6_and_refuses_port_0() {
        let hp = HostPort::parse("[::1]:5").unwrap();
        assert_eq!((hp.host(), hp.port()), ("::1", 5));
        assert_eq!(hp.to_string(), "[::1]:5");
        let hp = HostPort::parse("db.example:5432").unwrap();
        assert_eq!((hp.host(), hp.port()), ("db.example", 5432));
        assert_eq!(hp.to_string(), "db.example:5432");
        for bad in ["db.example", ":5432", "db:0", "db:99999", "db:x"] {
            let e = HostPort::parse(bad).unwrap_err();
            assert!(e.contains("host:port") && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn http_upstream_keeps_host_prefix_and_defaults_the_port() {
        let u = HttpUpstream::parse("http://app.internal/base/").unwrap();
        assert_eq!(u.authority(), "app.internal");
        assert_eq!(u.addr().to_string(), "app.internal:80");
        assert_eq!(u.prefix(), "/base");
        assert_eq!(u.to_string(), "http://app.internal/base");
        let u = HttpUpstream::parse("http://[::1]:8080").unwrap();
        assert_eq!(u.addr().host(), "::1");
        assert_eq!(u.addr().port(), 8080);
        for (bad, says) in [
            ("https://app", "http://"),
            ("httpx://app", "http://"),
            ("http://u@app", "host[:port]"),
            ("http://app/x?y", "query"),
            ("http://app:0", "port 0"),
            ("http://", "host[:port]"),
        ] {
            let e = HttpUpstream::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn https_url_is_https_only() {
        assert_eq!(
            HttpsUrl::parse("https://a.example:8443/p/")
                .unwrap()
                .to_string(),
            "https://a.example:8443/p"
        );
        assert!(HttpsUrl::parse("http://a.example")
            .unwrap_err()
            .contains("https://"));
    }
}
