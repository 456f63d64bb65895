//! The schema's parsing and validation, and where its errors point.

use super::*;

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
    assert_eq!(c.listener[0].mode, Mode::Http);
    assert_eq!(
        c.listener[0].http_upstream().unwrap().authority,
        "127.0.0.1:8080"
    );
}

#[test]
fn oidc_is_for_http_listeners_and_checked_while_parsing() {
    let oidc = "[listener.oidc]\nissuer = \"https://idp.example\"\nclient_id = \"gw\"\nclient_secret_file = \"s\"\ncookie_key_file = \"k\"\nallow_any_user = true\n";
    let c = parse(&format!("{OK}{oidc}")).unwrap();
    assert_eq!(c.listener[0].oidc.as_ref().unwrap().client_id, "gw");
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
        c.listener[0].client_crl,
        vec![PathBuf::from("a.crl"), PathBuf::from("b.der")]
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
    assert!(parse(OK).unwrap().listener[0].client_crl.is_empty());
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
fn host_port_split() {
    assert_eq!(split_host_port("[::1]:5"), Some(("::1".into(), 5)));
    assert_eq!(
        split_host_port("db.example:5432"),
        Some(("db.example".into(), 5432))
    );
    assert_eq!(split_host_port("db.example"), None);
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
