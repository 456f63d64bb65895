//! Helpers for the gateway tests: the real binary as a child process with a
//! generated config, certificates made with rcgen, small plaintext
//! backends on 127.0.0.1, and a rustls client. Every wait is bounded.
#![allow(dead_code)]

pub mod h2c;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pivault")
}

/// A CA and certificates it signs, written as PEM files into a directory.
pub struct Pki {
    pub dir: PathBuf,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca =
            rcgen::CertifiedIssuer::self_signed(p, rcgen::KeyPair::generate().unwrap()).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(format!("{name}-ca.pem")), ca.pem()).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            ca,
        }
    }
    pub fn ca_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-ca.pem"))
    }
    /// A leaf for `sans` with common name `cn`, plus extra URI SANs; writes
    /// FILE.pem and FILE.key and returns their paths.
    pub fn leaf(
        &self,
        file: &str,
        cn: &str,
        sans: &[&str],
        uris: &[&str],
        client: bool,
    ) -> (PathBuf, PathBuf) {
        let mut p =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        for u in uris {
            p.subject_alt_names
                .push(rcgen::SanType::URI((*u).try_into().unwrap()));
        }
        p.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.ca).unwrap();
        let (c, k) = (
            self.dir.join(format!("{file}.pem")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }
}

impl Pki {
    /// A client certificate from `p` as the caller built it (several CNs,
    /// odd subjects), signed by this CA; writes FILE.pem and FILE.key.
    pub fn sign(&self, file: &str, mut p: rcgen::CertificateParams) -> (PathBuf, PathBuf) {
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.ca).unwrap();
        let (c, k) = (
            self.dir.join(format!("{file}.pem")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }
}

impl Pki {
    /// A client certificate for CN=`cn` with serial number `serial` (what
    /// a CRL names); writes FILE.pem and FILE.key.
    pub fn client_serial(&self, file: &str, cn: &str, serial: u64) -> (PathBuf, PathBuf) {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.serial_number = Some(rcgen::SerialNumber::from(serial));
        self.sign(file, p)
    }
    /// A CRL signed by this CA revoking `serials`, whose nextUpdate is
    /// January 1st of `until`.
    pub fn crl(&self, serials: &[u64], until: i32) -> rcgen::CertificateRevocationList {
        rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2020, 1, 1),
            next_update: rcgen::date_time_ymd(until, 1, 1),
            crl_number: rcgen::SerialNumber::from(serials.len() as u64 + 1),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from(*s),
                    revocation_time: rcgen::date_time_ymd(2020, 1, 1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.ca)
        .unwrap()
    }
    /// [`Pki::crl`] as PEM, written to `path` whole (a new file renamed
    /// over it, as a CRL refresh should: the gateway's file watch never
    /// sees half a file).
    pub fn write_crl(&self, path: &Path, serials: &[u64], until: i32) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.crl(serials, until).pem().unwrap()).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
}

/// An HTTP/1.1 backend that keeps every request head it received (request
/// line and headers, as sent) and answers each with 200 "ok".
pub fn recording_backend() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let h2 = heads.clone();
    std::thread::spawn(move || {
        for s in l.incoming().take(1000) {
            let Ok(s) = s else { continue };
            let h3 = h2.clone();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                loop {
                    let Some((head, _body)) = read_request(&mut r) else {
                        return;
                    };
                    h3.lock().unwrap().push(head);
                    if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, heads)
}

/// The gateway, running as a child process.
pub struct Gw {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
    pub addrs: Vec<SocketAddr>,
    pub metrics: Option<SocketAddr>,
    pub config: PathBuf,
}

impl Gw {
    /// Writes `toml` to DIR/gw.toml and starts `pivault proxy --config`;
    /// waits (up to 20 s) until every listener is bound.
    pub fn start(dir: &Path, toml: &str) -> Gw {
        Gw::start_env(dir, toml, &[])
    }

    /// As [`Gw::start`], with extra environment variables.
    pub fn start_env(dir: &Path, toml: &str, env: &[(&str, &str)]) -> Gw {
        let config = dir.join("gw.toml");
        std::fs::write(&config, toml).unwrap();
        let n = toml.matches("[[listener]]").count();
        let mut child = Command::new(bin())
            .args(["proxy", "--config"])
            .arg(&config)
            .env("PIVAULT_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = lines.lock().unwrap().clone();
            let addrs: Vec<SocketAddr> = got
                .iter()
                .filter(|l| l.starts_with("pivault proxy:") && l.contains(" listener "))
                .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
                .collect();
            let metrics = got
                .iter()
                .find(|l| l.starts_with("pivault proxy: metrics on "))
                .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap());
            if addrs.len() == n && (metrics.is_some() || !toml.contains("[metrics]")) {
                return Gw {
                    child,
                    lines,
                    addrs,
                    metrics,
                    config,
                };
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("gateway exited early ({st}): {got:#?}");
            }
            assert!(Instant::now() < deadline, "gateway did not start: {got:#?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
    /// Waits up to `secs` for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
    /// Waits up to `secs` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP/1.1 backend: keep-alive; `/headers` echoes the request
/// header block; `/slow` answers after 3 s; `/big` sends 1 MiB; `/pause`
/// sends half of 100 kB, pauses 500 ms, then the rest; `/ws`
/// answers 101 and then echoes bytes; a request body is echoed back
/// (`/echo`). Returns its address.
pub fn http_backend() -> SocketAddr {
    counting_backend(Duration::from_secs(30)).0
}

/// [`http_backend`] that also counts the connections it accepted and
/// closes a connection that sent no request for `idle`.
pub fn counting_backend(idle: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let (addr, accepted, _) = gauged_backend(idle);
    (addr, accepted)
}

/// [`counting_backend`] that also says how many connections are open now.
pub fn gauged_backend(idle: Duration) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (n, open) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n2, open2) = (n.clone(), open.clone());
    std::thread::spawn(move || {
        for s in l.incoming().take(10_000) {
            let Ok(s) = s else { continue };
            n2.fetch_add(1, Ordering::SeqCst);
            open2.fetch_add(1, Ordering::SeqCst);
            let open3 = open2.clone();
            std::thread::spawn(move || {
                serve_http(s, idle);
                open3.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, n, open)
}

fn serve_http(s: TcpStream, idle: Duration) {
    s.set_read_timeout(Some(idle)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    for _ in 0..1000 {
        let Some((head, body)) = read_request(&mut r) else {
            return;
        };
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let reply = |w: &mut TcpStream, b: &[u8]| {
            let _ = write!(w, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-backend: yes\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\n\r\n", b.len());
            let _ = w.write_all(b);
        };
        match path.split('?').next().unwrap_or("/") {
            "/headers" => reply(&mut w, head.as_bytes()),
            "/slow" => {
                std::thread::sleep(Duration::from_secs(3));
                reply(&mut w, b"slow");
            }
            "/big" => reply(&mut w, &vec![b'x'; 1 << 20]),
            "/pause" => {
                // Half of a 100 kB body, a pause, then the rest.
                let half = vec![b'p'; 50_000];
                let _ = write!(w, "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n");
                let _ = w.write_all(&half);
                std::thread::sleep(Duration::from_millis(500));
                let _ = w.write_all(&half);
            }
            "/ws" => {
                let _ = w.write_all(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n");
                let mut buf = [0u8; 1024];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if w.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            "/echo" => reply(&mut w, &body),
            _ => reply(&mut w, b"hello from the legacy app\n"),
        }
    }
}

/// A TCP backend that reads to EOF, then answers "got N bytes" and closes
/// (so it only answers when half-close is passed through). With
/// `proxy_header`, the bytes read are returned raw instead.
pub fn eof_backend(raw: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(1000) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut all = Vec::new();
                if s.read_to_end(&mut all).is_err() {
                    return;
                }
                if raw {
                    let _ = s.write_all(&all);
                } else {
                    let _ = write!(s, "got {} bytes", all.len());
                }
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// A free port on 127.0.0.1 with nothing listening on it.
pub fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A rustls client config trusting `ca`, with an optional client cert.
pub fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let cfg = match client {
        Some((c, k)) => {
            let chain: Vec<_> = CertificateDer::pem_file_iter(c)
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
            b.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(k).unwrap())
                .unwrap()
        }
        None => b.with_no_client_auth(),
    };
    Arc::new(cfg)
}

pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects and completes a TLS handshake as `name`.
pub fn tls_connect(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    name: &str,
) -> std::io::Result<Tls> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tls_over(s, cfg, name)
}

/// Completes a TLS handshake as `name` over an already connected socket.
pub fn tls_over(s: TcpStream, cfg: Arc<rustls::ClientConfig>, name: &str) -> std::io::Result<Tls> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ClientConnection::new(cfg, name.to_string().try_into().unwrap()).unwrap();
    let mut t = rustls::StreamOwned::new(conn, s);
    while t.conn.is_handshaking() {
        t.conn.complete_io(&mut t.sock)?;
    }
    // TLS 1.3 client-certificate refusals arrive after the client's Finished:
    // read once to see them.
    Ok(t)
}

/// curl with a deadline; returns (exit code, stdout, stderr).
pub fn curl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-m", "15"])
        .args(args)
        .output()
        .expect("curl is installed");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `openssl s_client` with extra args against addr; (handshake ok, output).
pub fn s_client(addr: SocketAddr, extra: &[&str]) -> (bool, String) {
    let mut c = Command::new("timeout")
        .args(["10", "openssl", "s_client", "-connect", &addr.to_string()])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    drop(c.stdin.take());
    let out = c.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = text.contains("BEGIN CERTIFICATE")
        || text.contains("Cipher is ") && !text.contains("Cipher is (NONE)");
    (ok && !text.contains("Cipher is (NONE)"), text)
}

/// Fetches the metrics page.
pub fn metrics(addr: SocketAddr) -> String {
    curl(&[&format!("http://{addr}/metrics")]).1
}

/// A temp dir with a CA and a gateway certificate for localhost.
pub struct Setup {
    _dir: tempfile::TempDir,
    pub dir: PathBuf,
    pub pki: Pki,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A fresh [`Setup`].
pub fn setup() -> Setup {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_path_buf();
    let pki = Pki::new(&dir, "srv");
    let (cert, key) = pki.leaf("gw", "gw.test", &["localhost", "127.0.0.1"], &[], false);
    Setup {
        _dir: d,
        dir,
        pki,
        cert,
        key,
    }
}

impl Setup {
    /// The CA that signed the gateway certificate.
    pub fn ca(&self) -> PathBuf {
        self.pki.ca_path("srv")
    }
    /// An `http` listener on a free port in front of `upstream`.
    pub fn http(&self, upstream: SocketAddr, extra: &str) -> String {
        format!(
            "[[listener]]\nmode = \"http\"\nlisten = \"127.0.0.1:0\"\nupstream = \"http://{upstream}\"\ncert = \"{}\"\nkey = \"{}\"\n{extra}\n",
            self.cert.display(),
            self.key.display()
        )
    }
    /// A `tcp` listener on a free port in front of `upstream`.
    pub fn tcp(&self, upstream: SocketAddr, extra: &str) -> String {
        format!(
            "[[listener]]\nmode = \"tcp\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{upstream}\"\ncert = \"{}\"\nkey = \"{}\"\n{extra}\n",
            self.cert.display(),
            self.key.display()
        )
    }
    /// curl against https://localhost:PORT/PATH trusting the test CA.
    /// GET `path` over HTTP/2; returns (curl exit code, "VERSION STATUS").
    pub fn h2_get(&self, addr: SocketAddr, path: &str) -> (i32, String) {
        let (rc, out, err) = self.curl(
            addr,
            path,
            &[
                "--http2",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
            ],
        );
        if rc != 0 {
            eprintln!("curl: {err}");
        }
        (rc, out)
    }
    pub fn curl(&self, addr: SocketAddr, path: &str, extra: &[&str]) -> (i32, String, String) {
        let url = format!("https://localhost:{}{path}", addr.port());
        let resolve = format!("localhost:{}:127.0.0.1", addr.port());
        let ca = self.ca();
        let mut args = vec!["--resolve", &resolve, "--cacert", ca.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(&url);
        curl(&args)
    }
}

/// Ends the client's side of a TLS stream: close_notify, all of it sent.
/// The gateway passes it on as a half-close.
pub fn finish_writing(t: &mut Tls) {
    t.conn.send_close_notify();
    t.flush().unwrap();
    while t.conn.wants_write() {
        t.conn.write_tls(&mut t.sock).unwrap();
    }
}

/// Sends `payload` in plaintext to `addr`, half-closes, and returns what
/// came back before the other side closed. A gateway that refuses the
/// connection (its upstream failed verification) may close it before the
/// payload or the half-close gets there: that is an empty answer, not a
/// test failure.
pub fn plain_talk(addr: SocketAddr, payload: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = c.write_all(payload);
    let _ = c.shutdown(Shutdown::Write);
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out
}

/// Reads one HTTP/1.1 response with a content-length from a raw TLS
/// stream, and nothing past it; returns (status, body).
pub fn read_response(t: &mut Tls) -> (u16, String) {
    let mut r = BufReader::new(t);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {status:?}"));
    let mut len = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (code, String::from_utf8_lossy(&body).into_owned())
}

/// Reads one request: its head and the body its `content-length` names;
/// None at end of stream or on an error.
pub fn read_request(r: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
    let head = read_head(r)?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// Reads one request or response head, up to its blank line (not
/// included); None at end of stream or on an error.
pub fn read_head(r: &mut impl BufRead) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if line == "\r\n" {
            return Some(head);
        }
        head.push_str(&line);
    }
}

/// Sets the gateway's open-file limit (soft and hard) from outside, with
/// util-linux `prlimit`.
pub fn limit_files(gw: &Gw, n: usize) {
    let st = Command::new("prlimit")
        .arg(format!("--pid={}", gw.child.id()))
        .arg(format!("--nofile={n}:{n}"))
        .status()
        .expect("prlimit (util-linux) is installed");
    assert!(st.success());
}

/// True when the gateway refuses a TLS client with `cfg`: the handshake
/// fails, or the first request gets no answer (a refusal after a TLS 1.3
/// handshake, which the client learns on its first read).
#[allow(dead_code)]
pub fn tls_refused(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> bool {
    match tls_connect(addr, cfg, "localhost") {
        Err(_) => true,
        Ok(mut t) => {
            let _ = t.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
            let mut b = [0u8; 64];
            !matches!(t.read(&mut b), Ok(n) if n > 0)
        }
    }
}

/// The access-log records (JSON lines in `log`) that carry `refused`.
pub fn refusals(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("refused").is_some())
        .collect()
}

/// [`refusals`] once there are at least `n` (or after 10 s).
pub fn wait_refusals(log: &Path, n: usize) -> Vec<serde_json::Value> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let r = refusals(log);
        if r.len() >= n || Instant::now() > end {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
