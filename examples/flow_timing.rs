//! Whole-flow timing: one sandbox scenario through the worker, warm (one browser session reused)
//! and isolated (a fresh session, so a fresh profile, per flow), interleaved A B A B.
//!
//! `cargo run --release --example flow_timing -- [RUNS] [PROVIDER] [SCENARIO]`

use std::sync::Arc;
use std::time::Instant;

use pairing_worker::browser::{Browser, BrowserConfig};
use pairing_worker::codes::OneCode;
use pairing_worker::engine::pairing::{pair, pair_in_new_session, PairingOptions};
use pairing_worker::provider::Registry;
use pairing_worker::sandbox::Sandbox;
use pairing_worker::secret::{Credentials, SecretString};

fn summary(name: &str, mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let median = if ms.len() % 2 == 1 {
        ms[ms.len() / 2]
    } else {
        (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) / 2.0
    };
    format!(
        "| {name} | {} | {median:.0} | {:.0} | {:.0} |",
        ms.len(),
        ms[0],
        ms[ms.len() - 1]
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args.first().map(|r| r.parse()).transpose()?.unwrap_or(15);
    let provider = args.get(1).cloned().unwrap_or_else(|| "doordash".into());
    let scenario_name = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "code_by_email".into());

    let registry = Registry::from_source_tree()?;
    let spec = registry.get(&provider)?;
    let sandbox = Arc::new(Sandbox::from_registry(&registry)?);
    let card = sandbox
        .scenarios()
        .into_iter()
        .find(|c| c.provider == provider && c.scenario == scenario_name)
        .ok_or_else(|| anyhow::anyhow!("no scenario {provider}/{scenario_name}"))?;
    let (addr, _server) = sandbox.clone().serve("127.0.0.1:0").await?;
    let browser = Browser::launch(BrowserConfig::default()).await?;
    let credentials = Credentials {
        username: card.username.clone(),
        password: SecretString::from(card.password.clone()),
    };
    let options = PairingOptions {
        base_url: Some(format!("http://{addr}/{provider}")),
        ..PairingOptions::default()
    };
    let code = || OneCode(card.code.clone().map(SecretString::from));

    let warm_session = browser.session().await?;
    // One untimed flow each way: the first navigation of a new browser is not what we measure.
    pair(&warm_session, &spec, &credentials, &mut code(), &options).await?;
    pair_in_new_session(&browser, &spec, &credentials, &mut code(), &options).await?;

    let (mut warm, mut isolated, mut session_start) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let report = pair(&warm_session, &spec, &credentials, &mut code(), &options).await?;
        anyhow::ensure!(
            report.outcome == card.expected,
            "warm flow ended {}",
            report.outcome
        );
        warm.push(started.elapsed().as_secs_f64() * 1000.0);

        let started = Instant::now();
        let session = browser.session().await?;
        session_start.push(started.elapsed().as_secs_f64() * 1000.0);
        let report = pair(&session, &spec, &credentials, &mut code(), &options).await;
        session.close().await?;
        anyhow::ensure!(
            report?.outcome == card.expected,
            "isolated flow did not end as expected"
        );
        isolated.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    warm_session.close().await?;
    println!(
        "flow: {provider}/{scenario_name} (expected {}), {runs} runs each, interleaved",
        card.expected
    );
    println!("| flow | runs | median ms | min ms | max ms |\n|---|---|---|---|---|");
    println!("{}", summary("warm (session reused)", warm));
    println!(
        "{}",
        summary(
            "isolated (new session + profile per flow, closed after)",
            isolated
        )
    );
    println!(
        "{}",
        summary("  of which: new WebDriver session", session_start)
    );
    Ok(())
}
