//! The HTTP client instant-acme sends its requests through: the same one
//! the OIDC code uses ([`crate::oidc::client::IdpHttp`]), so the ACME API
//! is reached with the gateway's TLS policy and full verification
//! (`[acme] ca_file`, or the system roots), plain `http://` only to a
//! loopback address, answers capped at 1 MiB, no redirects followed, and a
//! deadline on every request: a CA that hangs cannot stall renewals.

use crate::oidc::client::IdpHttp;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use std::future::Future;
use std::pin::Pin;

/// [`IdpHttp`] as an instant-acme client.
pub struct AcmeHttp(pub IdpHttp);

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: hyper::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            use openidconnect::AsyncHttpClient;
            let (parts, body) = req.into_parts();
            // The body is bytes already: collecting cannot fail.
            let body = match body.collect().await {
                Ok(b) => b.to_bytes(),
                Err(never) => match never {},
            };
            let req = hyper::Request::from_parts(parts, body.to_vec());
            let rsp = client
                .call(req)
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let (parts, body) = rsp.into_parts();
            Ok(BytesResponse::from(hyper::Response::from_parts(
                parts,
                Full::new(Bytes::from(body)),
            )))
        })
    }
}
