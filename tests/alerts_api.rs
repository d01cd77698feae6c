//! The live-alert API: contacts and their channels, preferences, the link secret, the delivery
//! log; bad input gets a clear error naming the field and changes nothing.

#[path = "support/databases.rs"]
mod databases;
#[path = "support/lite.rs"]
mod lite;

use lite::{loopback, Lite};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn ana() -> Value {
    json!({
        "name": "Ana",
        "language": "fr-CA",
        "channels": ["email", "sms", "ticket"],
        "email": "ana@merchant.test",
        "phone": "+33612345678",
        "printer": { "host": "127.0.0.1" },
    })
}

#[tokio::test]
async fn contacts_are_added_checked_replaced_and_removed() {
    let api = Lite::start(loopback()).await;
    let (status, created) = api
        .call(Method::POST, "/v1/alert-contacts", Some(ana()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["language"], "fr",
        "a region is kept as its language"
    );
    assert_eq!(
        created["printer"],
        json!({"host": "127.0.0.1", "port": 9100, "columns": 42})
    );
    let id = created["id"].as_str().unwrap().to_string();
    let bad = [
        (json!({"language": "xx"}), "language"),
        (json!({"channels": []}), "channels"),
        (json!({"email": "not an address"}), "email"),
        (json!({"phone": "0612345678"}), "phone"),
        (
            json!({"printer": {"host": "127.0.0.1", "columns": 40}}),
            "printer.columns",
        ),
        (json!({"printer": null}), "printer"),
        (json!({"name": " "}), "name"),
    ];
    for (change, field) in bad {
        let mut body = ana();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, error) = api
            .call(
                Method::PUT,
                &format!("/v1/alert-contacts/{id}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
        assert_eq!(error["error"]["field"], field, "{body}: {error}");
    }
    let (_, list) = api.call(Method::GET, "/v1/alert-contacts", None).await;
    assert_eq!(
        list["contacts"][0], created,
        "a refused change changes nothing"
    );
    let mut only_email = ana();
    only_email["channels"] = json!(["email"]);
    let (status, replaced) = api
        .call(
            Method::PUT,
            &format!("/v1/alert-contacts/{id}"),
            Some(only_email),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replaced["channels"], json!(["email"]));
    let path = format!("/v1/alert-contacts/{id}");
    assert_eq!(
        api.call(Method::DELETE, &path, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.call(Method::DELETE, &path, None).await.0,
        StatusCode::NOT_FOUND
    );
    api.stop().await;
}

#[tokio::test]
async fn a_printer_on_our_own_network_is_refused() {
    // Public addresses only, as for webhooks: loopback is this worker's own network.
    let api = Lite::start(pairing_worker::reach::Reach::default()).await;
    let (status, error) = api
        .call(Method::POST, "/v1/alert-contacts", Some(ana()))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "printer.host");
    assert!(
        !error.to_string().contains("127.0.0.1"),
        "the value is not echoed: {error}"
    );
    api.stop().await;
}

#[tokio::test]
async fn preferences_and_the_link_secret() {
    let api = Lite::start(loopback()).await;
    let (_, defaults) = api.call(Method::GET, "/v1/alert-preferences", None).await;
    assert_eq!(
        defaults,
        json!({"threshold": 2, "cap_per_day": 5, "digest_window_seconds": 60,
               "recovery": false, "link_ttl_hours": 72})
    );
    let (status, set) = api
        .call(
            Method::PUT,
            "/v1/alert-preferences",
            Some(json!({"repair_url": "https://dash.example/repair", "cap_per_day": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["cap_per_day"], 3);
    let first = set["link_secret"]
        .as_str()
        .expect("made with the first repair URL");
    assert!(first.starts_with("alsec_"));
    let (_, again) = api
        .call(
            Method::PUT,
            "/v1/alert-preferences",
            Some(json!({"recovery": true})),
        )
        .await;
    assert!(again.get("link_secret").is_none(), "shown once: {again}");
    assert_eq!(again["repair_url"], "https://dash.example/repair", "kept");
    let (_, rotated) = api
        .call(Method::POST, "/v1/alert-preferences/link-secret", None)
        .await;
    assert_ne!(rotated["link_secret"], first);
    for (body, field) in [
        (json!({"threshold": 0}), "threshold"),
        (json!({"cap_per_day": 1000}), "cap_per_day"),
        (json!({"repair_url": "http://dash.example/"}), "repair_url"),
        (
            json!({"digest_window_seconds": 7200}),
            "digest_window_seconds",
        ),
    ] {
        let (status, error) = api
            .call(Method::PUT, "/v1/alert-preferences", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error["error"]["field"], field);
    }
    let (_, deliveries) = api
        .call(
            Method::GET,
            "/v1/alert-deliveries?channel=email&state=sent",
            None,
        )
        .await;
    assert_eq!(deliveries, json!({"deliveries": []}));
    let (status, _) = api
        .call(Method::GET, "/v1/alert-deliveries?state=lost", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    api.stop().await;
}
