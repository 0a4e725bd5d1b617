//! Store URLs: which backend, where, and how to mask secrets in messages.

use std::path::PathBuf;

use crate::error::StoreError;

/// Query parameters this crate reads (and removes) before redis-rs sees the URL.
const TLS_CA: &str = "tls_ca";
const TLS_CERT: &str = "tls_cert";
const TLS_KEY: &str = "tls_key";

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// The in-process store.
    Memory,
    /// One Redis server; `url` is what redis-rs is given.
    Node { url: String, tls: TlsFiles },
    /// A Redis Cluster, reached through any of its `nodes` (redis-rs URLs, each with
    /// the shared credentials).
    Cluster { nodes: Vec<String>, tls: TlsFiles },
}

/// PEM files named by `tls_ca`, `tls_cert` and `tls_key`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TlsFiles {
    pub(crate) ca: Option<PathBuf>,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
}

impl TlsFiles {
    pub(crate) fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }
}

/// Parses a store URL (forms in the crate docs).
pub(crate) fn parse(raw: &str) -> Result<Target, StoreError> {
    let raw = raw.trim();
    let bad = |reason: String| StoreError::BadUrl {
        url: mask(raw),
        reason,
    };
    if raw.eq_ignore_ascii_case("memory") || raw.eq_ignore_ascii_case("memory://") {
        return Ok(Target::Memory);
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err(bad(
            "expected `memory` or a redis://, rediss://, redis+cluster:// or \
             rediss+cluster:// URL"
                .into(),
        ));
    };
    let (tls, cluster) = match scheme.to_ascii_lowercase().as_str() {
        "redis" => (false, false),
        "rediss" => (true, false),
        "redis+cluster" => (false, true),
        "rediss+cluster" => (true, true),
        other => {
            return Err(bad(format!(
                "unsupported scheme `{other}`; expected redis, rediss, redis+cluster or \
                 rediss+cluster"
            )));
        }
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (files, passthrough) = split_query(query);
    if !tls && !files.is_empty() {
        return Err(bad(format!(
            "{TLS_CA}, {TLS_CERT} and {TLS_KEY} need a TLS scheme (rediss:// or rediss+cluster://)"
        )));
    }
    if files.cert.is_some() != files.key.is_some() {
        return Err(bad(format!(
            "{TLS_CERT} and {TLS_KEY} (a client certificate and its key) go together"
        )));
    }
    if let Some(f) = fragment {
        // redis-rs reads `#insecure` only with a feature this crate does not enable:
        // skipping certificate checks is not something a URL should be able to do.
        return Err(bad(format!(
            "URL fragment `#{f}` is not supported; to trust a private CA pass {TLS_CA}=PATH"
        )));
    }
    let base = if tls { "rediss" } else { "redis" };
    let suffix = if passthrough.is_empty() {
        String::new()
    } else {
        format!("?{passthrough}")
    };
    let creds = userinfo.map(|u| format!("{u}@")).unwrap_or_default();

    if cluster {
        if !matches!(path, "" | "/" | "/0") {
            return Err(bad(format!(
                "a Redis Cluster has only database 0, the URL names `{path}`"
            )));
        }
        let mut nodes = Vec::new();
        for host in hosts.split(',').map(str::trim) {
            if host.is_empty() {
                return Err(bad("empty node in the cluster node list".into()));
            }
            check_port(host).map_err(bad)?;
            nodes.push(format!("{base}://{creds}{host}{suffix}"));
        }
        return Ok(Target::Cluster { nodes, tls: files });
    }
    if hosts.is_empty() {
        return Err(bad("no host".into()));
    }
    if hosts.contains(',') {
        return Err(bad(format!(
            "several hosts: use {base}+cluster:// for a Redis Cluster"
        )));
    }
    check_port(hosts).map_err(bad)?;
    Ok(Target::Node {
        url: format!("{base}://{creds}{hosts}{path}{suffix}"),
        tls: files,
    })
}

/// Refuses a `host:port` whose port is not a TCP port, before redis-rs reports it as an
/// opaque client configuration error.
fn check_port(host: &str) -> Result<(), String> {
    // After an IPv6 literal's `]`, or after the only colon of a name or IPv4 address.
    let port = match host.rsplit_once(']') {
        Some((_, after)) => after.strip_prefix(':'),
        None => host.split_once(':').map(|(_, p)| p),
    };
    match port {
        None => Ok(()),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(()),
            _ => Err(format!("port `{p}` is not a TCP port (1 to 65535)")),
        },
    }
}

/// Splits a query string into our TLS parameters and the rest (kept for redis-rs,
/// e.g. `protocol=resp3`).
fn split_query(query: &str) -> (TlsFiles, String) {
    let mut files = TlsFiles::default();
    let mut rest = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            TLS_CA => files.ca = Some(PathBuf::from(v.as_ref())),
            TLS_CERT => files.cert = Some(PathBuf::from(v.as_ref())),
            TLS_KEY => files.key = Some(PathBuf::from(v.as_ref())),
            _ => {
                rest.append_pair(&k, &v);
            }
        }
    }
    (files, rest.finish())
}

/// The URL with any password replaced by `***`, for messages and logs.
pub(crate) fn mask(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let Some(at) = authority.rfind('@') else {
        return raw.to_owned();
    };
    let userinfo = &authority[..at];
    let masked = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        None => userinfo.to_owned(),
    };
    format!("{scheme}://{masked}{}", &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(url: &str) -> (String, TlsFiles) {
        match parse(url).unwrap() {
            Target::Node { url, tls } => (url, tls),
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn ports_out_of_range_are_refused_by_name() {
        for url in [
            "redis://127.0.0.1:99999",
            "redis://h:0",
            "redis://h:x/0",
            "redis+cluster://a:1,b:70000",
            "redis://[::1]:65536",
        ] {
            let err = parse(url).unwrap_err().to_string();
            assert!(err.contains("not a TCP port"), "{url}: {err}");
        }
        assert_eq!(node("redis://[::1]:6379").0, "redis://[::1]:6379");
        assert_eq!(node("redis://h").0, "redis://h");
    }

    #[test]
    fn memory_and_single_nodes() {
        assert_eq!(parse("memory").unwrap(), Target::Memory);
        assert_eq!(parse(" MEMORY ").unwrap(), Target::Memory);
        assert_eq!(node("redis://h:7000").0, "redis://h:7000");
        assert_eq!(node("redis://:pw@h:7000/3").0, "redis://:pw@h:7000/3");
        assert_eq!(
            node("redis://u:p@h:1/0?protocol=resp3").0,
            "redis://u:p@h:1/0?protocol=resp3"
        );
    }

    #[test]
    fn tls_parameters_are_taken_out() {
        let (url, tls) = node("rediss://h:6380/?tls_ca=/etc/ca.pem&protocol=resp3");
        assert_eq!(url, "rediss://h:6380/?protocol=resp3");
        assert_eq!(tls.ca, Some(PathBuf::from("/etc/ca.pem")));
        let (url, tls) = node("rediss://h:6380?tls_cert=/c.pem&tls_key=/k.pem");
        assert_eq!(url, "rediss://h:6380");
        assert!(tls.ca.is_none() && tls.cert.is_some() && tls.key.is_some());
    }

    #[test]
    fn cluster_node_lists() {
        let Target::Cluster { nodes, tls } =
            parse("redis+cluster://u:p%40ss@a:7000,b:7001, c:7002/?protocol=resp3").unwrap()
        else {
            panic!("not a cluster")
        };
        assert_eq!(
            nodes,
            vec![
                "redis://u:p%40ss@a:7000?protocol=resp3",
                "redis://u:p%40ss@b:7001?protocol=resp3",
                "redis://u:p%40ss@c:7002?protocol=resp3",
            ]
        );
        assert!(tls.is_empty());
        let Target::Cluster { nodes, tls } =
            parse("rediss+cluster://a:1,b:2?tls_ca=/ca.pem").unwrap()
        else {
            panic!("not a cluster")
        };
        assert_eq!(nodes, vec!["rediss://a:1", "rediss://b:2"]);
        assert!(tls.ca.is_some());
    }

    #[test]
    fn bad_urls_are_refused_with_the_password_masked() {
        for url in [
            "http://u:secret@h:1",
            "redis://u:secret@",
            "redis://u:secret@a:1,b:2",
            "redis://u:secret@h:1?tls_ca=/x",
            "rediss://u:secret@h:1?tls_cert=/x",
            "rediss://u:secret@h:1#insecure",
            "redis+cluster://u:secret@a:1,,b:2",
            "redis+cluster://u:secret@a:1/2",
            "h:6379",
        ] {
            let err = parse(url).unwrap_err();
            assert!(matches!(err, StoreError::BadUrl { .. }), "{url}");
            assert!(!err.to_string().contains("secret"), "{url}: {err}");
        }
    }

    #[test]
    fn masking() {
        assert_eq!(mask("redis://h:1"), "redis://h:1");
        assert_eq!(mask("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(mask("rediss://user:p@w@h:1"), "rediss://user:***@h:1");
        assert_eq!(mask("redis://user@h:1"), "redis://user@h:1");
        assert_eq!(
            mask("redis+cluster://u:pw@a:1,b:2?x=1"),
            "redis+cluster://u:***@a:1,b:2?x=1"
        );
        assert_eq!(mask("memory"), "memory");
    }
}
