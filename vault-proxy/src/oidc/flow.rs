//! The requests an OIDC listener answers itself: the redirect to the IdP
//! (login start), the callback, logout, and the refusals. The usual
//! request, with a valid session cookie, takes [`Oidc::pass`] only: one
//! cookie opened, no allocation beyond the session's strings.

use super::cookie::{self, Login, Session};
use super::validate::{chain, Client, Identity};
use super::{now, Denied, Oidc, LOGIN_TTL};
use crate::listener::{ConnInfo, Shared};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode, Uri};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::url::Url;
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope,
};
use std::borrow::Cow;

/// A response of the gateway's own.
pub(crate) type Answer = Response<Full<Bytes>>;

/// What the gate decided for a request that did not simply pass.
pub(crate) struct Gate {
    /// The response.
    pub resp: Answer,
    /// The access log's `refused` text, when a login was refused.
    pub refused: Option<String>,
}

fn text(status: StatusCode, msg: String) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(msg)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // Nothing of a login may be cached by the browser or a proxy.
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn redirect(to: &str) -> Answer {
    let mut r = text(StatusCode::FOUND, String::new());
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn set_cookie(r: &mut Answer, c: String) {
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The path to come back to after login: the request's own path, only
/// when it is plainly local (`//host` and `/\host` are other sites to a
/// browser) and not too long.
fn local_path(uri: &Uri) -> String {
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    let ok = pq.starts_with('/')
        && !pq.starts_with("//")
        && !pq.starts_with("/\\")
        && pq.len() <= 2048
        && pq.bytes().all(|b| (0x21..0x7f).contains(&b));
    if ok {
        pq.to_string()
    } else {
        "/".into()
    }
}

/// The host the client asked for, when it is a plain host[:port].
fn request_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    let h = match headers.get(header::HOST) {
        Some(h) => h.to_str().ok()?,
        None => uri.authority()?.as_str(),
    };
    let plain = !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    plain.then_some(h)
}

impl Oidc {
    /// The session of a request that goes to the app as it is; None when
    /// the gate must answer it ([`Oidc::answer`]).
    pub(crate) fn pass(&self, uri: &Uri, headers: &HeaderMap) -> Option<Session> {
        let path = uri.path();
        if path == self.cfg.callback_path || path == self.cfg.logout_path {
            return None;
        }
        self.session(headers).ok().flatten()
    }

    /// Whether `uri` is the callback (whose query holds the code).
    pub(crate) fn is_callback(&self, uri: &Uri) -> bool {
        uri.path() == self.cfg.callback_path
    }

    /// The gateway's cookies, removed before the request goes to the app.
    pub(crate) fn strip_cookies(&self, headers: &mut HeaderMap) {
        cookie::strip(headers, &[&self.cfg.cookie_name, &self.login_cookie]);
    }

    /// Answers a request [`Oidc::pass`] did not let through.
    pub(crate) async fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        info: &ConnInfo,
        sh: &Shared,
    ) -> Gate {
        let path = uri.path();
        if path == self.cfg.callback_path {
            return match self.callback(uri, headers).await {
                Ok((resp, user)) => {
                    info.metrics(sh)
                        .oidc_logins
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(listener = %info.listener, client = %info.peer, user = %user, "OIDC login");
                    Gate {
                        resp,
                        refused: None,
                    }
                }
                Err((why, words)) => {
                    let refused = self.deny(info, sh, why, &words);
                    let status = match why {
                        Denied::LoginState => StatusCode::BAD_REQUEST,
                        Denied::IdpUnavailable | Denied::TokenExchange => StatusCode::BAD_GATEWAY,
                        _ => StatusCode::FORBIDDEN,
                    };
                    let mut resp = text(
                        status,
                        format!(
                            "{} sign-in refused ({}); open the page again to retry\n",
                            status.as_u16(),
                            why.as_str()
                        ),
                    );
                    set_cookie(&mut resp, cookie::set_cookie(&self.login_cookie, "", 0));
                    Gate {
                        resp,
                        refused: Some(refused),
                    }
                }
            };
        }
        if path == self.cfg.logout_path {
            return Gate {
                resp: self.logout().await,
                refused: None,
            };
        }
        let mut refused = None;
        let mut clear = false;
        if let Err(e) = self.session(headers) {
            let words = match e {
                cookie::Opened::Tampered => "the session cookie does not open (tampered, or not one of this listener's)",
                cookie::Opened::UnknownKey => "the session cookie is sealed with a key not in cookie_key_file (removed, or another deployment's)",
            };
            refused = Some(self.deny(info, sh, Denied::BadSessionCookie, words));
            clear = true;
        }
        let mut resp = if method == Method::GET || method == Method::HEAD {
            self.start(uri, headers).await
        } else {
            // A form post or an API call cannot be sent through a login
            // and replayed after it.
            text(
                StatusCode::UNAUTHORIZED,
                "401 sign-in required: open the page in a browser first\n".into(),
            )
        };
        if clear {
            set_cookie(&mut resp, cookie::set_cookie(&self.cfg.cookie_name, "", 0));
        }
        Gate { resp, refused }
    }

    fn redirect_uri(&self, uri: &Uri, headers: &HeaderMap) -> Option<RedirectUrl> {
        let base = match &self.cfg.public_url {
            Some(b) => b.clone(),
            None => format!("https://{}", request_host(uri, headers)?),
        };
        RedirectUrl::new(format!("{base}{}", self.cfg.callback_path)).ok()
    }

    fn client(&self, p: &super::validate::Provider) -> Client {
        Client::from_provider_metadata(
            p.meta.clone(),
            ClientId::new(self.cfg.client_id.clone()),
            Some(ClientSecret::new(self.secret.to_string())),
        )
        // Basic authentication unless the IdP takes only the form post.
        .set_auth_type(match p.meta.token_endpoint_auth_methods_supported() {
            Some(m)
                if !m.is_empty()
                    && !m.contains(
                        &openidconnect::core::CoreClientAuthMethod::ClientSecretBasic,
                    )
                    && m.contains(&openidconnect::core::CoreClientAuthMethod::ClientSecretPost) =>
            {
                openidconnect::AuthType::RequestBody
            }
            _ => openidconnect::AuthType::BasicAuth,
        })
    }

    /// The redirect to the IdP, with a fresh login cookie.
    async fn start(&self, uri: &Uri, headers: &HeaderMap) -> Answer {
        let Some(redirect_uri) = self.redirect_uri(uri, headers) else {
            return text(
                StatusCode::BAD_REQUEST,
                "400 bad request: no usable Host for the sign-in redirect\n".into(),
            );
        };
        let p = match self.idp.provider().await {
            Ok(p) => p,
            Err(_) => {
                return text(
                    StatusCode::BAD_GATEWAY,
                    "502 the identity provider cannot be reached; try again shortly\n".into(),
                )
            }
        };
        let client = self.client(&p);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in self.cfg.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = req
            .set_pkce_challenge(challenge)
            .set_redirect_uri(Cow::Owned(redirect_uri))
            .url();
        let login = Login {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            back: local_path(uri),
            issued: now(),
        };
        let Some(sealed) = cookie::seal_json(&self.keys, &self.login_ctx, &login) else {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 no randomness\n".into(),
            );
        };
        let mut resp = redirect(url.as_str());
        set_cookie(
            &mut resp,
            cookie::set_cookie(&self.login_cookie, &sealed, LOGIN_TTL),
        );
        resp
    }

    /// The IdP's redirect back: code for tokens, ID token checked, session
    /// set, browser sent where it was going.
    async fn callback(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<(Answer, String), (Denied, String)> {
        let state_err = |w: &str| (Denied::LoginState, w.to_string());
        let sealed = cookie::find(headers, &self.login_cookie).ok_or_else(|| {
            state_err("callback without a login cookie (a forged or stale callback, one over 10 minutes old, or cookies blocked)")
        })?;
        let login: Login =
            cookie::open_json(&self.keys, &self.login_ctx, sealed).map_err(|_| {
                state_err("the login cookie does not open (tampered, or another gateway's key)")
            })?;
        let now = now();
        if login.issued.saturating_add(LOGIN_TTL) < now {
            return Err(state_err("the login took longer than 10 minutes"));
        }
        let (mut code, mut state, mut error, mut desc) = (None, None, None, None);
        for (k, v) in
            openidconnect::url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        {
            match &*k {
                "code" => code = Some(v.into_owned()),
                "state" => state = Some(v.into_owned()),
                "error" => error = Some(v.into_owned()),
                "error_description" => desc = Some(v.into_owned()),
                _ => {}
            }
        }
        let matches = |st: &str| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                st.as_bytes(),
                login.state.as_bytes(),
            ))
        };
        // An error answer logs no one in; some providers leave `state`
        // out of it (RFC 6749 wants it), so only a wrong one is refused
        // as a forgery.
        if let Some(e) = error.filter(|_| state.as_deref().is_none_or(matches)) {
            let esc = |s: &str| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            };
            return Err((
                Denied::IdpError,
                format!(
                    "the identity provider answered error={}{}",
                    esc(&e),
                    desc.map(|d| format!(" ({})", esc(&d))).unwrap_or_default()
                ),
            ));
        }
        let state = state.ok_or_else(|| state_err("callback without `state`"))?;
        if !matches(&state) {
            return Err(state_err("`state` is not this browser's login (a forged callback, or a second login in another tab)"));
        }
        let code = code.ok_or_else(|| state_err("callback without `code`"))?;
        let redirect_uri = self
            .redirect_uri(uri, headers)
            .ok_or_else(|| state_err("no usable Host for the redirect URI"))?;
        let p = self
            .idp
            .provider()
            .await
            .map_err(|w| (Denied::IdpUnavailable, w))?;
        let client = self.client(&p);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| {
                (
                    Denied::IdpUnavailable,
                    format!("the IdP names no token endpoint: {e}"),
                )
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(login.verifier.clone()))
            .set_redirect_uri(Cow::Owned(redirect_uri))
            .request_async(self.idp.http())
            .await
            .map_err(|e| {
                (
                    Denied::TokenExchange,
                    format!("the token endpoint refused the code: {}", chain(&e)),
                )
            })?;
        let id_token = tokens.extra_fields().id_token().ok_or_else(|| {
            (
                Denied::InvalidToken,
                "the token response has no id_token".to_string(),
            )
        })?;
        let claims = self
            .idp
            .verify(&self.cfg, p, id_token, &Nonce::new(login.nonce.clone()))
            .await?;
        if !self.first_use(&login.nonce, login.issued + LOGIN_TTL) {
            return Err((
                Denied::Replayed,
                "this login's nonce was already used (a replayed callback)".into(),
            ));
        }
        let id =
            Identity::from_claims(&self.cfg, &claims).map_err(|w| (Denied::InvalidToken, w))?;
        id.admitted(&self.cfg.allow, &claims)
            .map_err(|w| (Denied::NotAllowed, w))?;
        let session = id.session(now).map_err(|w| (Denied::InvalidToken, w))?;
        let sealed = cookie::seal_json(&self.keys, &self.session_ctx, &session)
            .filter(|s| s.len() <= cookie::MAX_COOKIE)
            .ok_or_else(|| {
                (
                    Denied::InvalidToken,
                    "the session does not fit in a cookie".to_string(),
                )
            })?;
        let mut resp = redirect(&login.back);
        set_cookie(
            &mut resp,
            cookie::set_cookie(
                &self.cfg.cookie_name,
                &sealed,
                self.cfg.session_ttl.as_secs(),
            ),
        );
        set_cookie(&mut resp, cookie::set_cookie(&self.login_cookie, "", 0));
        Ok((resp, session.user))
    }

    /// Clears the session; on to the IdP's end-session endpoint when it
    /// has one, so the next visit asks for a login again.
    async fn logout(&self) -> Answer {
        let end = match self.idp.provider().await {
            Ok(p) => p
                .meta
                .additional_metadata()
                .end_session_endpoint
                .as_ref()
                .and_then(|u| Url::parse(u.as_str()).ok()),
            Err(_) => None,
        };
        let mut resp = match end {
            Some(mut u) => {
                {
                    let mut q = u.query_pairs_mut();
                    q.append_pair("client_id", &self.cfg.client_id);
                    if let Some(back) = &self.cfg.post_logout_url {
                        q.append_pair("post_logout_redirect_uri", back);
                    }
                }
                redirect(u.as_str())
            }
            None => text(StatusCode::OK, "signed out\n".into()),
        };
        set_cookie(&mut resp, cookie::set_cookie(&self.cfg.cookie_name, "", 0));
        set_cookie(&mut resp, cookie::set_cookie(&self.login_cookie, "", 0));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_local_paths_are_returned_to() {
        let p = |s: &str| local_path(&s.parse::<Uri>().unwrap());
        assert_eq!(p("/app/x?y=1"), "/app/x?y=1");
        assert_eq!(p("//evil.example/x"), "/");
        assert_eq!(p("/\\evil.example"), "/");
        assert_eq!(p("https://evil.example/x"), "/x");
    }
}
