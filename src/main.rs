//! The `gamedeploy` command line: a thin edge over the library.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use gamedeploy::inplace::table;

#[derive(Parser)]
#[command(
    name = "gamedeploy",
    version,
    about = "GameDeployment operator with crash-safe in-place updates"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every CustomResourceDefinition (GameDeployment, HookTemplate, HookRun) as YAML.
    Crds,
    /// Print the in-place update state machine: states, transitions, forcible edges.
    States {
        #[arg(long, value_enum, default_value_t = StatesFormat::Markdown)]
        format: StatesFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StatesFormat {
    /// States and transitions as Markdown tables.
    Markdown,
    /// A Mermaid stateDiagram.
    Mermaid,
    /// The transition table as data (states/transitions.yaml).
    Yaml,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = match cli.command {
        Command::Crds => gamedeploy::api::crds_yaml().map_err(|e| e.to_string()),
        Command::States { format } => states(format),
    };
    match output {
        Ok(text) => {
            // A closed pipe (`gamedeploy crds | head`) is not an error worth a message.
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gamedeploy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn states(format: StatesFormat) -> Result<String, String> {
    let t = table::table().map_err(|e| e.to_string())?;
    Ok(match format {
        StatesFormat::Markdown => {
            let mut out = String::from("| state | persisted | meaning |\n|---|---|---|\n");
            for s in &t.states {
                out.push_str(&format!(
                    "| {} | {} | {} |\n",
                    s.name,
                    if s.persisted { "yes" } else { "derived" },
                    s.meaning
                ));
            }
            out.push('\n');
            out.push_str(&t.markdown());
            out
        }
        StatesFormat::Mermaid => t.mermaid(),
        StatesFormat::Yaml => table::SOURCE.to_string(),
    })
}
