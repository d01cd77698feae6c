//! `lexicon`: what the shared lexicon reads in a text, and how large it is. For adapter developers
//! and lexicon authors trying a portal's wording.

use std::process::ExitCode;

use clap::Subcommand;

use pairing_worker::provider::Registry;

#[derive(Subcommand)]
pub enum LexiconCommand {
    /// Print the concepts a text expresses, with the language and expression that matched.
    Scan {
        /// The text (a message as the portal shows it).
        text: String,
        /// Read with this provider's own wording added.
        #[arg(long)]
        provider: Option<String>,
    },
    /// Languages and expressions per language.
    Size,
}

pub fn lexicon(registry: &Registry, command: LexiconCommand) -> anyhow::Result<ExitCode> {
    match command {
        LexiconCommand::Scan { text, provider } => {
            let lexicon = match provider {
                Some(id) => registry.get(&id)?.lexicon.clone(),
                None => registry.shared.lexicon.clone(),
            };
            let hits = lexicon.scan(&text);
            println!("{}", serde_json::to_string_pretty(&hits)?);
            Ok(ExitCode::SUCCESS)
        }
        LexiconCommand::Size => {
            let size = registry.shared.source.size();
            let total: usize = size.values().sum();
            for (language, n) in &size {
                println!("{language:<4} {n:>5}");
            }
            println!("all  {total:>5} expressions in {} languages", size.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}
