//! Every recorded page is a test: one trial per page, named `<provider>::<case>`, that classifies
//! the page with its provider's spec and compares with the expected file beside it. A page that
//! matches no rule, or two rules, fails.

use libtest_mimic::{Arguments, Failed, Trial};
use pairing_worker::kit::fixtures;
use pairing_worker::kit::sandbox::script::SandboxScript;
use pairing_worker::provider::Registry;

fn main() {
    let args = Arguments::from_args();
    let registry = Registry::from_source_tree().unwrap_or_else(|e| panic!("specs must load: {e}"));
    let mut trials = Vec::new();
    for spec in registry.supported() {
        let pages = match fixtures::load(&pairing_worker::kit::fixtures::source_tree(), &spec.id) {
            Ok(pages) => pages,
            Err(problem) => {
                trials.push(Trial::test(format!("{}::load", spec.id), move || {
                    Err(problem.into())
                }));
                continue;
            }
        };
        {
            let (files, id, pages) = (
                pairing_worker::kit::fixtures::source_tree(),
                spec.id.clone(),
                pages.clone(),
            );
            trials.push(Trial::test(format!("{id}::sandbox_script"), move || {
                match SandboxScript::load(&files, &id, &pages) {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err(Failed::from(format!(
                        "{id} has recorded pages but no sandbox.toml"
                    ))),
                    Err(problem) => Err(problem.into()),
                }
            }));
        }
        for page in pages {
            let spec = spec.clone();
            trials.push(Trial::test(
                format!("{}::{}", page.provider, page.case),
                move || page.check(&spec).map(|_| ()).map_err(Failed::from),
            ));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
