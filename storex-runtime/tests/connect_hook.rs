//! The connect hook (token auth with a signed token) and the Origin policy.
// HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
#![allow(clippy::expect_used)]

mod common;

use common::stores::User;
use common::{Client, TestServer};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use storex::{Config, ConnectRequest, Extensions, Refusal};

const SECRET: &[u8] = b"test secret, not for production";

/// `USER.SIGNATURE`, the signature an HMAC-SHA256 of the user in hex.
fn sign(user: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    mac.update(user.as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{user}.{signature}")
}

/// The hook: a valid token in the `token` cookie or query parameter attaches the user.
fn authenticate(request: &ConnectRequest) -> Result<Extensions, Refusal> {
    let token = request
        .cookie("token")
        .or_else(|| request.query("token"))
        .ok_or_else(|| Refusal::unauthorized("A token is required."))?;
    let (user, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| Refusal::unauthorized("Malformed token."))?;
    let signature = (0..signature.len())
        .step_by(2)
        .map(|i| {
            signature
                .get(i..i + 2)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| Refusal::unauthorized("Malformed token."))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    mac.update(user.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| Refusal::unauthorized("Invalid token."))?;
    let mut extensions = Extensions::new();
    extensions.insert(User(user.to_owned()));
    Ok(extensions)
}

#[actix_rt::test]
async fn a_signed_token_lets_init_see_the_user() {
    let server = TestServer::start(Config::default().on_connect(authenticate));
    let url = format!("{}?token={}", server.ws_url(), sign("ada"));
    let mut client = Client::connect(&url, &[]).await.expect("accepted");
    assert_eq!(
        client.join("Test.Whoami", json!({})).await["data"],
        json!({"user": "ada"})
    );

    let cookie = format!("theme=dark; token={}", sign("grace"));
    let mut client = Client::connect(&server.ws_url(), &[("cookie", &cookie)])
        .await
        .expect("accepted");
    assert_eq!(
        client.join("Test.Whoami", json!({})).await["data"],
        json!({"user": "grace"})
    );
}

#[actix_rt::test]
async fn a_missing_or_forged_token_is_refused_before_the_upgrade() {
    let server = TestServer::start(Config::default().on_connect(authenticate));
    let forged = sign("ada").replace("ada.", "root.");
    for url in [
        server.ws_url(),
        format!("{}?token={forged}", server.ws_url()),
    ] {
        assert_eq!(upgrade_at(&url, &[]).await, 401, "{url}");
    }
    let (status, body) = common::http_get_text(&server.http_url("store=Test.Whoami"), &[]).await;
    assert_eq!((status, body.as_str()), (401, "A token is required."));
    let url = server.http_url(&format!("store=Test.Whoami&token={}", sign("ada")));
    let (status, body) = common::http_get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!({"user": "ada"}));
}

#[actix_rt::test]
async fn without_the_hook_init_sees_no_user() {
    let server = TestServer::start(Config::default());
    let mut client = server.connect().await;
    assert_eq!(
        client.join("Test.Whoami", json!({})).await["error"],
        "Unauthorized"
    );
}

#[actix_rt::test]
async fn the_origin_allow_list_refuses_other_pages() {
    let server = TestServer::start(Config::default().allowed_origins(["http://good.test"]));
    assert_eq!(
        upgrade(&server, &[("origin", "http://good.test")]).await,
        101
    );
    assert_eq!(
        upgrade(&server, &[]).await,
        101,
        "a client without Origin (not a browser)"
    );
    assert_eq!(
        upgrade(&server, &[("origin", "http://evil.test")]).await,
        403
    );
    let own = format!("http://{}", server.addr);
    assert_eq!(
        upgrade(&server, &[("origin", &own)]).await,
        403,
        "the list replaces the same-host default"
    );
}

/// Extra request headers.
type Headers<'a> = &'a [(&'static str, &'a str)];

/// The status of a WebSocket upgrade of `server`'s endpoint with these extra headers: 101 when
/// accepted.
async fn upgrade(server: &TestServer, headers: Headers<'_>) -> u16 {
    upgrade_at(&server.ws_url(), headers).await
}

/// The status of a WebSocket upgrade at `url` with these extra headers: 101 when accepted.
async fn upgrade_at(url: &str, headers: Headers<'_>) -> u16 {
    match Client::connect(url, headers).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an answer, got {other}"),
    }
}

#[actix_rt::test]
async fn by_default_only_pages_of_the_same_host_connect() {
    let server = TestServer::start(Config::default());
    let port = server.addr.port();
    let own = format!("http://{}", server.addr);
    let other_port = format!("http://127.0.0.1:{}", port.wrapping_add(1));
    let localhost = format!("http://LocalHost:{port}");
    let localhost_host = format!("localhost:{port}");
    let cases: [(&str, Headers<'_>, u16); 11] = [
        ("the same host", &[("origin", &own)], 101),
        ("no Origin (not a browser)", &[], 101),
        (
            "the same name in another case",
            &[("origin", &localhost), ("host", &localhost_host)],
            101,
        ),
        ("another host", &[("origin", "http://evil.test")], 403),
        ("another port", &[("origin", &other_port)], 403),
        ("an opaque origin", &[("origin", "null")], 403),
        (
            "port 80 left out of Host",
            &[("origin", "http://app.test"), ("host", "app.test")],
            101,
        ),
        (
            "port 80 written in Host",
            &[("origin", "http://app.test"), ("host", "app.test:80")],
            101,
        ),
        (
            "port 443 left out of Host",
            &[("origin", "https://app.test"), ("host", "app.test")],
            101,
        ),
        (
            "port 80 written in the Origin",
            &[("origin", "http://app.test:80"), ("host", "app.test")],
            101,
        ),
        (
            "a default port that is not the Host's",
            &[("origin", "https://app.test"), ("host", "app.test:80")],
            403,
        ),
    ];
    for (case, headers, status) in cases {
        assert_eq!(upgrade(&server, headers).await, status, "{case}");
    }
}

#[actix_rt::test]
async fn any_origin_accepts_every_page() {
    let server = TestServer::start(Config::default().any_origin());
    let other_port = format!("http://127.0.0.1:{}", server.addr.port().wrapping_add(1));
    for origin in ["http://evil.test", "null", &other_port] {
        assert_eq!(
            upgrade(&server, &[("origin", origin)]).await,
            101,
            "{origin}"
        );
    }
    assert_eq!(upgrade(&server, &[]).await, 101);
    let url = server.http_url("store=Test.Counter");
    let (status, _) = common::http_get_text(&url, &[("origin", "http://evil.test")]).await;
    assert_eq!(status, 200);
}

#[actix_rt::test]
async fn the_http_join_applies_the_origin_policy_to_pages() {
    let server = TestServer::start(Config::default());
    let url = server.http_url("store=Test.Counter");
    let (status, body) = common::http_get_text(&url, &[("origin", "http://evil.test")]).await;
    assert_eq!(
        (status, body.as_str()),
        (403, "This origin may not connect to this storex endpoint.")
    );
    let own = format!("http://{}", server.addr);
    let (status, body) = common::http_get_text(&url, &[("origin", &own)]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = common::http_get_text(&url, &[]).await;
    assert_eq!(status, 200, "no Origin (server-side rendering): {body}");

    let listed = TestServer::start(Config::default().allowed_origins(["http://good.test"]));
    let url = listed.http_url("store=Test.Counter");
    let (status, _) = common::http_get_text(&url, &[("origin", "http://good.test")]).await;
    assert_eq!(status, 200);
    let (status, _) = common::http_get_text(&url, &[("origin", "http://evil.test")]).await;
    assert_eq!(status, 403);
}

#[actix_rt::test]
async fn a_refusal_is_always_an_error_status() {
    let hook = |_: &ConnectRequest| {
        Err(Refusal {
            status: 200,
            message: "no".into(),
        })
    };
    let server = TestServer::start(Config::default().on_connect(hook));
    let (status, body) = common::http_get_text(&server.http_url("store=Test.Counter"), &[]).await;
    assert_eq!((status, body.as_str()), (403, "no"));
}
