//! The HTTP client `openidconnect` sends its requests through (discovery,
//! JWKS, the token endpoint): one hyper HTTP/1.1 connection per request,
//! over rustls with the gateway's TLS policy and full verification
//! (`ca_file`, or the system roots). Plain `http://` only to a loopback
//! host (a local test provider), also for URLs the discovery document
//! names. No redirects are followed (the IdP's endpoints do not redirect;
//! following them would let a discovery document point the gateway
//! anywhere), answers are capped at 1 MiB, and every request has a
//! deadline.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use openidconnect::{HttpRequest, HttpResponse};
use rustls::ClientConfig;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The largest answer read from the IdP.
const MAX_BODY: usize = 1 << 20;

/// Why a request to the IdP failed, in words for the log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IdpHttpError(pub String);

/// The client (cheap to clone).
#[derive(Clone)]
pub struct IdpHttp {
    tls: Arc<ClientConfig>,
    timeout: Duration,
}

impl IdpHttp {
    /// A client verifying servers with `tls`; each request must finish
    /// within `timeout`.
    pub fn new(tls: Arc<ClientConfig>, timeout: Duration) -> Self {
        IdpHttp { tls, timeout }
    }

    async fn fetch(&self, req: HttpRequest) -> Result<HttpResponse, IdpHttpError> {
        let e = |m: String| IdpHttpError(m);
        let uri = req.uri().clone();
        let host = uri
            .host()
            .ok_or_else(|| e(format!("{uri}: no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if super::config::check_url("url", &uri.to_string()).is_ok() => false,
            _ => {
                return Err(e(format!(
                    "{uri}: only https:// (or http:// to a loopback address) is fetched"
                )))
            }
        };
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|err| e(format!("{host}:{port}: {err}")))?;
        let _ = tcp.set_nodelay(true);
        let (mut parts, body) = req.into_parts();
        // Origin form on the wire; the authority goes in Host.
        let pq = uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = pq.parse().map_err(|_| e(format!("{uri}: bad path")))?;
        let authority = uri.authority().map_or(host.clone(), |a| a.to_string());
        parts.headers.insert(
            hyper::header::HOST,
            hyper::header::HeaderValue::from_str(&authority)
                .map_err(|_| e(format!("{uri}: bad host")))?,
        );
        parts.headers.insert(
            hyper::header::USER_AGENT,
            hyper::header::HeaderValue::from_static("pivault-gateway"),
        );
        let req = hyper::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let resp = if tls {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| e(format!("{host}: not a valid server name")))?;
            let s = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|err| e(format!("TLS with {host}:{port}: {err}")))?;
            send(TokioIo::new(s), req).await
        } else {
            send(TokioIo::new(tcp), req).await
        }
        .map_err(|err| e(format!("{uri}: {err}")))?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|err| e(format!("{uri}: reading the answer: {err}")))?
            .to_bytes();
        Ok(HttpResponse::from_parts(parts, body.to_vec()))
    }
}

/// One request on a fresh HTTP/1.1 connection.
async fn send<T>(
    io: T,
    req: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut tx, conn) = hyper::client::conn::http1::handshake(io).await?;
    // The connection ends with the request: it is not kept.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    tx.send_request(req).await
}

impl<'c> openidconnect::AsyncHttpClient<'c> for IdpHttp {
    type Error = IdpHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, IdpHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let uri = request.uri().to_string();
            match tokio::time::timeout(self.timeout, self.fetch(request)).await {
                Ok(r) => r,
                Err(_) => Err(IdpHttpError(format!(
                    "{uri}: no answer within {} s",
                    self.timeout.as_secs()
                ))),
            }
        })
    }
}
