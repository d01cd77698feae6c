//! The held-out corpus and the generated variants of every recorded page: one trial per page,
//! which fails on a wrong outcome (an unrecognised page is safe, and passes), and a summary of
//! exact / unrecognised / wrong per provider and language group, printed with `--nocapture`.

use libtest_mimic::{Arguments, Failed, Trial};
use pairing_worker::kit::corpus::{self, Verdict};
use pairing_worker::kit::fixtures;
use pairing_worker::provider::{FileTree, Registry};

fn main() {
    let args = Arguments::from_args();
    let registry = Registry::from_source_tree().unwrap_or_else(|e| panic!("specs must load: {e}"));
    let held_out = FileTree::Disk(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let mut trials = Vec::new();
    for spec in registry.supported() {
        let mut pages = match corpus::load(&held_out, &spec.id) {
            Ok(pages) => pages,
            Err(problem) => {
                trials.push(Trial::test(format!("{}::load", spec.id), move || {
                    Err(problem.into())
                }));
                continue;
            }
        };
        let recorded = fixtures::load(&pairing_worker::kit::fixtures::source_tree(), &spec.id)
            .expect("fixtures load");
        pages.extend(corpus::variants(spec, &recorded));
        {
            let (spec, pages) = (spec.clone(), pages.clone());
            trials.push(Trial::test(format!("{}::summary", spec.id), move || {
                let report = corpus::report(&spec, &pages);
                for (name, score) in [
                    ("blind (all langs)", &report.blind),
                    ("claimed languages", &report.claimed),
                    ("other languages", &report.other),
                    ("generated variants", &report.generated),
                ] {
                    println!(
                        "{:<10} {name:<19} {:>3} pages: {:>5.1} % exact, {:>5.1} % unrecognised, {} wrong",
                        spec.id,
                        score.pages,
                        score.exact_pct(),
                        score.unrecognized_pct(),
                        score.wrong
                    );
                }
                for (case, verdict) in &report.misses {
                    println!("    {case}: {verdict:?}");
                }
                Ok(())
            }));
        }
        for page in pages {
            let spec = spec.clone();
            let kind = if page.generated {
                "variant"
            } else {
                "held_out"
            };
            trials.push(Trial::test(
                format!("{}::{kind}::{}", page.provider, page.case),
                move || match corpus::judge(&spec, &page) {
                    Verdict::Wrong { got } => Err(Failed::from(format!(
                        "WRONG outcome: the page means {}, the classifier says {got} ({})",
                        page.meaning
                            .outcome
                            .map_or("an ordinary step".to_string(), |o| o.to_string()),
                        page.meaning.note.clone().unwrap_or_default()
                    ))),
                    _ => Ok(()),
                },
            ));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
