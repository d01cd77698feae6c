//! No API caller reaches our network: webhook URLs and mailbox hosts on loopback, private,
//! link-local or metadata addresses (literal, in IPv6 spellings, or behind a name) are refused
//! when set and again at connect time; delivery errors do not tell open ports from closed ones.
//! Real HTTP on loopback throughout.

#[path = "support/databases.rs"]
mod databases;
#[path = "support/lite.rs"]
mod lite;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use lite::{loopback, receiver, Lite, ORG};
use pairing_worker::reach::{Reach, Resolver};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn set_webhook(api: &Lite, url: &str) -> (StatusCode, serde_json::Value) {
    api.call(Method::PUT, "/v1/webhook", Some(json!({ "url": url })))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_into_our_network_are_refused() {
    let api = Lite::start(Reach::default()).await;
    let (listening, seen) = receiver().await;
    let port = listening.rsplit(':').next().unwrap();
    for url in [
        format!("http://{listening}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://0.0.0.0:{port}/hook"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_string(),
        "http://10.1.2.3/hook".to_string(),
        "http://192.168.1.1/hook".to_string(),
        "http://100.64.0.1/hook".to_string(),
        "http://[fe80::1]/hook".to_string(),
        "http://[64:ff9b::7f00:1]/hook".to_string(),
        "https://no-such-host.invalid/hook".to_string(),
    ] {
        let (status, body) = set_webhook(&api, &url).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert_eq!(body["error"]["field"], "url", "{url}: {body}");
        let text = body.to_string();
        assert!(
            !text.contains(port) && !text.contains("169.254") && !text.contains("10.1.2.3"),
            "{url}: the value is echoed: {text}"
        );
    }
    let (status, _) = api.call(Method::GET, "/v1/webhook", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was registered");
    assert_eq!(seen.load(Ordering::SeqCst), 0);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_allow_list_lets_loopback_through_and_nothing_else() {
    let api = Lite::start(loopback()).await;
    let (listening, seen) = receiver().await;
    let (status, body) = set_webhook(&api, &format!("http://{listening}/hook")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = set_webhook(&api, "http://10.1.2.3/hook").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = set_webhook(&api, "http://169.254.169.254/").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // The last accepted one is still registered; an event reaches it.
    api.queue.emit(ORG, "test.ping", json!({})).await.unwrap();
    let delivery = api.attempted_delivery().await;
    assert_eq!(delivery.state, "delivered", "{delivery:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    api.stop().await;
}

/// A DNS server that answers a public address once (the validation) and loopback afterwards.
struct Rebinding {
    calls: AtomicUsize,
}

impl Resolver for Rebinding {
    fn lookup(&self, _host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let first = self.calls.fetch_add(1, Ordering::SeqCst) == 0;
        let answer: IpAddr = if first {
            "93.184.215.14".parse().unwrap()
        } else {
            "127.0.0.1".parse().unwrap()
        };
        Box::pin(async move { Ok(vec![answer]) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebinding_name_is_refused_at_connect_time() {
    let resolver = Arc::new(Rebinding {
        calls: AtomicUsize::new(0),
    });
    let api = Lite::start(Reach::default().with_resolver(resolver.clone())).await;
    let (listening, seen) = receiver().await;
    let port = listening.rsplit(':').next().unwrap();
    let (status, body) = set_webhook(&api, &format!("http://hooks.rebind.test:{port}/hook")).await;
    assert_eq!(status, StatusCode::OK, "public at validation: {body}");
    api.queue.emit(ORG, "test.ping", json!({})).await.unwrap();
    let delivery = api.attempted_delivery().await;
    assert!(
        resolver.calls.load(Ordering::SeqCst) >= 2,
        "resolved again to connect"
    );
    assert_eq!(
        delivery.last_error.as_deref(),
        Some(pairing_worker::webhook_delivery::REFUSED),
        "{delivery:?}"
    );
    assert_eq!(delivery.last_status, None);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "the loopback receiver was reached"
    );
    let (_, webhook) = api.call(Method::GET, "/v1/webhook", None).await;
    assert!(!webhook.to_string().contains("127.0.0.1"), "{webhook}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_ip_literal_url_is_refused_at_delivery() {
    // A row written before the policy existed (or by hand): reqwest never resolves an IP literal,
    // so the deliverer checks it itself.
    let api = Lite::start(Reach::default()).await;
    let (listening, seen) = receiver().await;
    let url = format!("http://{listening}/hook");
    api.queue.set_webhook(ORG, &url).await.unwrap();
    api.queue.emit(ORG, "test.ping", json!({})).await.unwrap();
    let delivery = api.attempted_delivery().await;
    assert_eq!(
        delivery.last_error.as_deref(),
        Some(pairing_worker::webhook_delivery::REFUSED),
        "{delivery:?}"
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "the loopback receiver was reached"
    );
    api.stop().await;
}

/// Endpoints that give no HTTP answer: refused, closed at once, speaking another protocol.
async fn silent_endpoints() -> Vec<(&'static str, u16)> {
    use tokio::io::AsyncWriteExt;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let hang_up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_up_port = hang_up.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = hang_up.accept().await {
            drop(stream);
        }
    });
    let ssh = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ssh_port = ssh.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = ssh.accept().await {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    vec![
        ("closed", closed_port),
        ("hangs up", hang_up_port),
        ("speaks ssh", ssh_port),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_errors_do_not_tell_open_ports_from_closed_ones() {
    let api = Lite::start(loopback()).await;
    let mut errors = Vec::new();
    for (what, port) in silent_endpoints().await {
        let (status, body) = set_webhook(&api, &format!("http://127.0.0.1:{port}/hook")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        api.queue.emit(ORG, "test.ping", json!({})).await.unwrap();
        let delivery = api.attempted_delivery().await;
        assert_eq!(delivery.last_status, None, "{what}: {delivery:?}");
        errors.push((what, delivery.last_error.unwrap_or_default()));
    }
    for (what, error) in &errors {
        assert_eq!(
            error,
            pairing_worker::webhook_delivery::NO_ANSWER,
            "{what} reads differently: {errors:?}"
        );
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxes_on_our_network_are_refused() {
    let api = Lite::start(Reach::default()).await;
    let account = |host: &str| {
        json!({
            "provider": "deliveroo",
            "credentials": {"username": "owner@sandbox.test", "password": "Canary-Pw-1"},
            "mailbox": {"host": host, "port": 9993, "username": "codes", "password": "Canary-Pw-2"},
        })
    };
    let hosts = [
        "127.0.0.1",
        "localhost",
        "2130706433",
        "0.0.0.0",
        "169.254.169.254",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.10",
        "100.100.100.200",
        "no-such-host.invalid",
    ];
    for host in hosts {
        let (status, body) = api
            .call(Method::POST, "/v1/accounts", Some(account(host)))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{host}: {body}");
        assert_eq!(body["error"]["field"], "mailbox.host", "{host}: {body}");
        assert!(!body.to_string().contains(host), "{host} echoed: {body}");
    }
    let (_, accounts) = api.call(Method::GET, "/v1/accounts", None).await;
    assert_eq!(accounts, json!([]), "nothing was created");
    // Nor through an update of an account that has none.
    let mut plain = account("x");
    plain.as_object_mut().unwrap().remove("mailbox");
    let (status, created) = api.call(Method::POST, "/v1/accounts", Some(plain)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = format!("/v1/accounts/{}", created["id"].as_str().unwrap());
    let patch = json!({"mailbox": account("localhost")["mailbox"]});
    let (status, body) = api.call(Method::PATCH, &path, Some(patch)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let id = created["id"].as_str().unwrap();
    let secrets = api.queue.account_secrets(id).await.unwrap().unwrap();
    assert!(secrets.mailbox.is_none(), "the update changed nothing");
    api.stop().await;
}
