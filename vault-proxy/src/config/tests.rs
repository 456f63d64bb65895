//! The schema's parsing into typed values, and where its errors point.

use super::*;
use std::path::PathBuf;

fn parse(s: &str) -> Result<Config> {
    Config::parse(s, Path::new("gw.toml"))
}

const OK: &str = r#"
[[listener]]
mode = "http"
listen = "127.0.0.1:8443"
upstream = "http://127.0.0.1:8080"
cert = "c.pem"
key = "k.pem"
"#;

#[test]
fn minimal_config_parses_with_defaults() {
    let c = parse(OK).unwrap();
    assert_eq!(c.limits.max_connections, 10_000);
    let li = &c.listener[0];
    assert_eq!(li.mode(), Mode::Http);
    assert_eq!(li.addr, "127.0.0.1:8443".parse().unwrap());
    let ListenerKind::Http { tls, upstream, .. } = &li.kind else {
        panic!("{li:?}")
    };
    assert_eq!(upstream.authority(), "127.0.0.1:8080");
    assert_eq!(
        tls.cert,
        ServerCert::Files {
            chain: "c.pem".into(),
            key: KeySource::File("k.pem".into())
        }
    );
    assert!(tls.clients.is_none());
}

#[test]
fn oidc_is_for_http_listeners_and_checked_while_parsing() {
    let oidc = "[listener.oidc]\nissuer = \"https://idp.example\"\nclient_id = \"gw\"\nclient_secret_file = \"s\"\ncookie_key_file = \"k\"\nallow_any_user = true\n";
    let c = parse(&format!("{OK}{oidc}")).unwrap();
    let ListenerKind::Http { oidc: Some(o), .. } = &c.listener[0].kind else {
        panic!("{:?}", c.listener[0])
    };
    assert_eq!(o.client_id, "gw");
    let tcp = "[[listener]]\nmode = \"tcp\"\nlisten = \"127.0.0.1:9000\"\nupstream = \"127.0.0.1:9001\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
    let e = parse(&format!("{tcp}{oidc}")).unwrap_err().to_string();
    assert!(
        e.contains("`oidc`") && e.contains("not used in mode \"tcp\""),
        "{e}"
    );
    let e = parse(&format!(
        "{OK}{}",
        oidc.replace("https://idp", "http://idp")
    ))
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("gw.toml:8:"), "{e}");
    assert!(e.contains("[listener.oidc] issuer"), "{e}");
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let e = parse(&format!("{OK}colour = \"red\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("gw.toml:8:"), "{e}");
    assert!(e.contains("colour"), "{e}");
}

#[test]
fn workers_is_a_count_of_threads() {
    assert_eq!(
        parse(&format!("workers = 3\n{OK}")).unwrap().workers,
        Some(3)
    );
    assert_eq!(parse(OK).unwrap().workers, None);
    assert_eq!(
        parse(&format!("workers = \"auto\"\n{OK}")).unwrap().workers,
        None
    );
    let e = parse(&format!("workers = \"many\"\n{OK}"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("gw.toml:1:") && e.contains("\"auto\""), "{e}");
    for bad in ["0", "513", "-1"] {
        let e = parse(&format!("workers = {bad}\n{OK}"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("gw.toml:1:"), "{e}");
        assert!(e.contains("workers") && e.contains("1 to 512"), "{e}");
    }
}

#[test]
fn wrong_type_names_the_key() {
    let e = parse("[limits]\nmax_connections = \"many\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("gw.toml:2:"), "{e}");
    assert!(e.contains("max_connections"), "{e}");
}

#[test]
fn missing_upstream_is_located() {
    let e = parse(&OK.replace("upstream = \"http://127.0.0.1:8080\"\n", ""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("upstream") && e.contains("gw.toml:2:"), "{e}");
}

#[test]
fn bad_allow_rule_and_allow_without_ca() {
    let e = parse(&format!("{OK}allow = [\"CN=a\"]\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("client_ca"), "{e}");
    let e = parse(&format!("{OK}client_ca = \"ca.pem\"\nallow = [\"XX\"]\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("gw.toml:9:") && e.contains("allow"), "{e}");
}

#[test]
fn client_crl_needs_client_ca_and_a_tls_listener() {
    let e = parse(&format!("{OK}client_crl = [\"a.crl\"]\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gw.toml:8:")
            && e.contains("key `client_crl`")
            && e.contains("needs `client_ca`"),
        "{e}"
    );
    let c = parse(&format!(
        "{OK}client_ca = \"ca.pem\"\nclient_crl = [\"a.crl\", \"b.der\"]\n"
    ))
    .unwrap();
    assert_eq!(
        c.listener[0].tls_in().unwrap().crls(),
        [PathBuf::from("a.crl"), PathBuf::from("b.der")]
    );
    let e = parse(&format!(
        "{OK}client_ca = \"ca.pem\"\nclient_crl = [\"\"]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("empty path"), "{e}");
    let e = parse(
        "[[listener]]\nmode = \"redirect\"\nlisten = \"127.0.0.1:80\"\nto = \"https://x\"\nclient_crl = [\"a.crl\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("client_crl") && e.contains("not used in mode"),
        "{e}"
    );
    assert!(parse(OK).unwrap().listener[0]
        .tls_in()
        .unwrap()
        .crls()
        .is_empty());
}

#[test]
fn allow_rules_parse() {
    assert_eq!(
        AllowRule::parse("CN=alice").unwrap(),
        AllowRule::Cn("alice".into())
    );
    assert!(matches!(
        AllowRule::parse(&format!("SPKI:{}", "ab".repeat(32))),
        Ok(AllowRule::Spki(_))
    ));
    assert!(AllowRule::parse("SPKI:abc").is_err());
}

#[test]
fn limits_are_bounded_so_deadlines_and_caps_cannot_overflow() {
    for (k, v) in [
        ("body_timeout_s", "86401"),
        ("h2_idle_timeout_s", "18446744073709551615"),
        ("max_upstream_connections", "10000001"),
        ("max_connections_per_client", "0"),
    ] {
        let e = parse(&format!("[limits]\n{k} = {v}\n{OK}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(k), "{k} = {v}: {e}");
    }
    let c = parse(&format!("[limits]\nbody_timeout_s = 86400\n{OK}")).unwrap();
    assert_eq!(c.limits.body_timeout_s, 86_400);
}

/// A typed listener's settings, or the test's panic.
fn tls(c: &Config) -> &TlsIn {
    c.listener[0].tls_in().unwrap()
}

const MTLS: &str = "client_ca = \"ca.pem\"\n";

#[test]
fn allow_absent_admits_every_verified_client_and_present_restricts() {
    let c = parse(&format!("{OK}{MTLS}")).unwrap();
    let clients = tls(&c).clients.as_ref().unwrap();
    assert_eq!(clients.ca, PathBuf::from("ca.pem"));
    assert_eq!(clients.access, Access::AnyVerifiedClient);
    assert_eq!(tls(&c).allow_list(), None);
    let c = parse(&format!(
        "{OK}{MTLS}allow = [\"CN=alice\", \"DNS:App.Example\"]\n"
    ))
    .unwrap();
    let list = tls(&c).allow_list().unwrap();
    assert_eq!(
        list.rules(),
        [
            AllowRule::Cn("alice".into()),
            AllowRule::Dns("app.example".into())
        ]
    );
}

#[test]
fn an_empty_allow_list_is_refused_and_says_what_to_write() {
    let e = parse(&format!("{OK}{MTLS}allow = []\n"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("gw.toml:9:9: key `allow`: "), "{e}");
    assert!(
        e.contains("admit no one")
            && e.contains("not read as \"everyone\"")
            && e.contains("[\"CN=alice\"]")
            && e.contains("remove `allow`"),
        "{e}"
    );
    // Without client_ca too: it would have asked for no certificate.
    let e = parse(&format!("{OK}allow = []\n")).unwrap_err().to_string();
    assert!(e.contains("key `allow`") && e.contains("client_ca"), "{e}");
}

#[test]
fn a_bad_allow_rule_is_an_error_at_the_rule_not_dropped() {
    // The third rule, on its own line: line 12, column 5.
    let src = format!(
        "{OK}{MTLS}allow = [\n    \"CN=alice\",\n    \"DNS:app.example\",\n    \"XX\",\n]\n"
    );
    let e = parse(&src).unwrap_err().to_string();
    assert!(
        e.starts_with("gw.toml:12:5: key `allow`: `XX`: expected"),
        "{e}"
    );
    assert!(e.contains("\"CN=name\""), "{e}");
    // A bad pin beside good rules: refused, not left out (which with no
    // good rule left used to admit everyone).
    let e = parse(&format!("{OK}{MTLS}allow = [\"CN=a\", \"SPKI:abc\"]\n"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("gw.toml:9:"), "{e}");
    assert!(e.contains("64 hex digits"), "{e}");
    let e = parse(&format!("{OK}{MTLS}allow = [\"CN=\"]\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty value"), "{e}");
}

#[test]
fn each_mode_names_the_key_it_is_missing() {
    let listener = |mode: &str, body: &str| {
        format!("[[listener]]\nmode = \"{mode}\"\nlisten = \"127.0.0.1:0\"\n{body}")
    };
    let files = "cert = \"c.pem\"\nkey = \"k.pem\"\n";
    for (src, key, says) in [
        (listener("http", files), "upstream", "http://host:port"),
        (
            listener("http", "upstream = \"http://a:1\"\nkey = \"k.pem\"\n"),
            "cert",
            "PEM chain",
        ),
        (
            listener("http", "upstream = \"http://a:1\"\ncert = \"c.pem\"\n"),
            "key",
            "sealed:VAULT_DIR:NAME",
        ),
        (listener("tcp", files), "upstream", "host:port"),
        (
            listener("tcp", "upstream = \"a:1\"\nkey = \"k.pem\"\n"),
            "cert",
            "PEM chain",
        ),
        (listener("originate", ""), "upstream", "host:port"),
        (listener("redirect", ""), "to", "https://host"),
    ] {
        let e = parse(&src).unwrap_err().to_string();
        let mode = src.lines().nth(1).unwrap();
        assert!(
            e.starts_with("gw.toml:1:1: ")
                && e.contains(&format!("key `{key}`"))
                && e.contains("needs")
                && e.contains(says),
            "{mode}: {e}"
        );
    }
}

#[test]
fn a_key_of_another_mode_is_refused_naming_the_modes_that_take_it() {
    let files = "cert = \"c.pem\"\nkey = \"k.pem\"\n";
    for (mode, body, key, only) in [
        (
            "tcp",
            format!("upstream = \"a:1\"\n{files}hsts = true\n"),
            "hsts",
            "http",
        ),
        (
            "http",
            format!("upstream = \"http://a:1\"\n{files}proxy_protocol = true\n"),
            "proxy_protocol",
            "tcp",
        ),
        (
            "http",
            format!("upstream = \"http://a:1\"\n{files}ca = \"ca.pem\"\n"),
            "ca",
            "originate",
        ),
        (
            "originate",
            format!("upstream = \"a:1\"\n{files}"),
            "cert",
            "http and tcp",
        ),
        (
            "redirect",
            "to = \"https://a\"\nupstream = \"a:1\"\n".into(),
            "upstream",
            "http and tcp and originate",
        ),
        (
            "redirect",
            "to = \"https://a\"\nallow = [\"CN=a\"]\n".into(),
            "allow",
            "http and tcp",
        ),
        (
            "tcp",
            format!("upstream = \"a:1\"\n{files}to = \"https://a\"\n"),
            "to",
            "redirect",
        ),
    ] {
        let src = format!("[[listener]]\nmode = \"{mode}\"\nlisten = \"127.0.0.1:0\"\n{body}");
        let e = parse(&src).unwrap_err().to_string();
        let line = src
            .lines()
            .position(|l| l.starts_with(&format!("{key} =")))
            .unwrap()
            + 1;
        assert!(
            e.starts_with(&format!("gw.toml:{line}:1: key `{key}`: not used in mode \"{mode}\" (only in {only}); remove it")),
            "{mode} {key}: {e}"
        );
    }
}

#[test]
fn each_mode_gets_its_own_typed_settings() {
    let src = r#"
[[listener]]
mode = "tcp"
listen = "[::1]:9000"
upstream = "[::1]:5432"
cert = "c.pem"
key = "sealed:/srv/v:gw"
proxy_protocol = true

[[listener]]
mode = "originate"
listen = "127.0.0.1:5433"
upstream = "db.example:5432"
client_cert = "cc.pem"
client_key = "ck.pem"

[[listener]]
mode = "redirect"
listen = "127.0.0.1:80"
to = "https://app.example/base/"

[[listener]]
mode = "http"
listen = "127.0.0.1:443"
upstream = "http://app.internal"
cert = "c.pem"
key = "k.pem"
"#;
    let c = parse(src).unwrap();
    let ListenerKind::Tcp {
        tls,
        upstream,
        proxy_protocol: true,
    } = &c.listener[0].kind
    else {
        panic!("{:?}", c.listener[0])
    };
    assert_eq!((upstream.host(), upstream.port()), ("::1", 5432));
    assert_eq!(
        tls.keys().collect::<Vec<_>>(),
        [&KeySource::Sealed("sealed:/srv/v:gw".into())]
    );
    let ListenerKind::Originate {
        upstream,
        server_name,
        ca: None,
        client_cert: Some(cc),
    } = &c.listener[1].kind
    else {
        panic!("{:?}", c.listener[1])
    };
    assert_eq!(upstream.to_string(), "db.example:5432");
    assert_eq!(server_name.to_str(), "db.example");
    assert_eq!(cc.key, PathBuf::from("ck.pem"));
    let ListenerKind::Redirect { to } = &c.listener[2].kind else {
        panic!("{:?}", c.listener[2])
    };
    assert_eq!(to.to_string(), "https://app.example/base");
    let ListenerKind::Http { upstream, .. } = &c.listener[3].kind else {
        panic!("{:?}", c.listener[3])
    };
    // No port in the URL: HTTP's, for connecting; the Host stays as written.
    assert_eq!(upstream.addr().to_string(), "app.internal:80");
    assert_eq!(upstream.authority(), "app.internal");
}

#[test]
fn values_that_do_not_parse_are_located_at_the_value() {
    let originate =
        "[[listener]]\nmode = \"originate\"\nlisten = \"127.0.0.1:0\"\nupstream = \"db:5432\"\n";
    for (src, at, says) in [
        (
            format!("{originate}server_name = \"not a name\"\n"),
            "gw.toml:5:15: key `server_name`",
            "not a valid server name",
        ),
        (
            format!("{originate}client_cert = \"c.pem\"\n"),
            "gw.toml:5:1: key `client_cert`",
            "needs `client_key`",
        ),
        (
            originate.replace("db:5432", "db"),
            "gw.toml:4:12: key `upstream`",
            "expected host:port",
        ),
        (
            OK.replace("k.pem", "sealed:/v"),
            "gw.toml:7:7: key `key`",
            "sealed:VAULT_DIR:NAME",
        ),
        (
            OK.replace("http://127.0.0.1:8080", "127.0.0.1:8080"),
            "gw.toml:5:12: key `upstream`",
            "http://",
        ),
        (
            format!("{OK}client_identity_header = \"X-Forwarded-User\"\n"),
            "gw.toml:8:26: key `client_identity_header`",
            "other proxies use",
        ),
        (
            format!("{OK}[[listener.sni]]\nnames = []\ncert = \"s.pem\"\nkey = \"s.key\"\n"),
            "gw.toml:9:1: key `names`",
            "at least one server name",
        ),
        (
            format!("{OK}{MTLS}client_crl = [\"a.crl\", \"\"]\n"),
            "gw.toml:9:24: key `client_crl`",
            "empty path",
        ),
    ] {
        let e = parse(&src).unwrap_err().to_string();
        assert!(e.starts_with(at) && e.contains(says), "{at}: {e}");
    }
}

#[test]
fn two_listeners_on_one_address_are_refused() {
    let e = parse(&format!("{OK}{}", OK.replace("8080", "8081")))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("gw.toml:11:1: key `listen`") && e.contains("used by an earlier listener"),
        "{e}"
    );
}
