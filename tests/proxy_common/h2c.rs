//! A hostile HTTP/2 client for the gateway tests, on the `h2` crate over
//! tokio-rustls: streams whose bodies come late or never, PINGs, and a
//! chosen source address.

use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;

/// A tokio runtime for the async (HTTP/2) clients.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub type H2 = h2::client::SendRequest<Bytes>;

/// An HTTP/2 client connection over TLS (ALPN h2); its connection task
/// runs in the background and its end is reported on the returned channel.
pub async fn h2_connect(
    a: SocketAddr,
    cfg: &Arc<rustls::ClientConfig>,
    src: Option<&str>,
) -> (H2, tokio::sync::oneshot::Receiver<()>, Option<h2::PingPong>) {
    let mut c = (**cfg).clone();
    c.alpn_protocols = vec![b"h2".to_vec()];
    let sock = match src {
        Some(ip) => {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.bind(format!("{ip}:0").parse().unwrap()).unwrap();
            s.connect(a).await.unwrap()
        }
        None => tokio::net::TcpStream::connect(a).await.unwrap(),
    };
    let tls = tokio_rustls::TlsConnector::from(Arc::new(c))
        .connect("localhost".try_into().unwrap(), sock)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (tx, mut conn) = h2::client::handshake(tls).await.unwrap();
    let ping = conn.ping_pong();
    let (done_tx, done) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = conn.await;
        let _ = done_tx.send(());
    });
    (tx, done, ping)
}

pub fn h2_req(method: &str, path: &str, len: Option<usize>) -> http::Request<()> {
    let mut b = http::Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"));
    if let Some(n) = len {
        b = b.header("content-length", n);
    }
    b.body(()).unwrap()
}

/// Reads a whole response body.
pub async fn h2_body(resp: http::Response<h2::RecvStream>) -> (u16, String) {
    let code = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(d) = body.data().await {
        let d = d.unwrap();
        body.flow_control().release_capacity(d.len()).unwrap();
        out.extend_from_slice(&d);
    }
    (code, String::from_utf8_lossy(&out).into_owned())
}
