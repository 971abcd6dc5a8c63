//! The command line grammar (clap derive). Every command carries an
//! example in its `--help` (`after_help`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;

use crate::args::parse_env_pair;

/// `faas`: deploy, invoke and inspect lowcode-faas functions.
#[derive(Debug, Parser)]
#[command(
    name = "faas",
    version,
    about = "Deploy, invoke and inspect lowcode-faas functions",
    after_help = "Examples:\n  faas deploy hello.mjs --env GREETING=hi\n  faas invoke hello --input '{\"name\":\"Ada\"}' --logs\n  faas run hello.mjs --input @input.json\n\nExit status: 0 success, 1 the run failed, 2 usage error, 3 server or network error."
)]
pub struct Cli {
    /// Base URL of the dispatcher.
    #[arg(
        long,
        global = true,
        env = "LOWCODE_FAAS_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// API token, sent as `Authorization: Bearer …`.
    #[arg(long, global = true, env = "LOWCODE_FAAS_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API's raw JSON answer instead of tables and text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `--collection C`: absent is the root collection.
#[derive(Debug, Args, Clone, Default)]
pub struct CollectionArg {
    /// Collection path (`team/api`); absent = the root collection.
    #[arg(long, short = 'c')]
    pub collection: Option<String>,
}

/// `--env K=V`, repeatable.
#[derive(Debug, Args, Clone, Default)]
pub struct EnvArgs {
    /// An env variable `KEY=VALUE` (repeatable; the last one of a key wins).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    pub env: Vec<(String, String)>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a function from a file, or save a new version of it.
    ///
    /// Without `--env` a new version keeps the function's env (a new
    /// function starts with none); with `--env` the given pairs replace it.
    #[command(
        after_help = "Examples:\n  faas deploy hello.mjs --collection team/api --env GREETING=hi\n  (prints: deployed team/api/hello version 1)\n  faas deploy hello.mjs --collection team/api\n  (version 2, still with GREETING=hi)\n\nEnv: without --env the function keeps the env it has (a new function gets none); with --env the given pairs replace the whole env (the other keys are removed)."
    )]
    Deploy {
        /// The handler module (an ES module exporting `handler`).
        file: PathBuf,
        /// Function name (default: the file's stem).
        #[arg(long, short = 'n')]
        name: Option<String>,
        /// Collection.
        #[command(flatten)]
        collection: CollectionArg,
        /// The function's own env: replaces the stored one; without it the
        /// stored env is kept.
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Fetch a new source for an existing function from a URL.
    #[command(after_help = "Example:\n  faas pull hello https://example.com/hello.mjs")]
    Pull {
        /// Function name.
        name: String,
        /// http(s) URL of the new source.
        #[arg(value_name = "URL")]
        source_url: String,
        /// Collection.
        #[command(flatten)]
        collection: CollectionArg,
    },
    /// Run a deployed function and print its output.
    #[command(
        after_help = "Examples:\n  faas invoke hello --input '{\"name\":\"Ada\"}'\n  echo '{\"name\":\"Ada\"}' | faas invoke hello --input - --logs\n  faas invoke hello --version 1 --timeout 5000 --env GREETING=hey"
    )]
    Invoke {
        /// Function name.
        name: String,
        /// Collection.
        #[command(flatten)]
        collection: CollectionArg,
        /// The run's request env.
        #[command(flatten)]
        env: EnvArgs,
        /// Timeout, version, logs and input.
        #[command(flatten)]
        run: InvokeArgs,
    },
    /// Run a handler file locally with node (no server).
    #[command(
        after_help = "Example:\n  faas run hello.mjs --input '{\"name\":\"Ada\"}' --env GREETING=hi\n\nThe handler's console output is printed to stderr; the output JSON to stdout."
    )]
    Run {
        /// The handler module.
        file: PathBuf,
        /// The input: inline JSON, `@file`, or `-` for stdin (default `{}`).
        #[arg(long, short = 'i')]
        input: Option<String>,
        /// Env of the run.
        #[command(flatten)]
        env: EnvArgs,
        /// Kill the run after this many milliseconds.
        #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        /// The node binary.
        #[arg(long, env = "LOWCODE_FAAS_NODE_BIN", default_value = "node")]
        node: String,
    },
    /// List the functions of a collection.
    #[command(after_help = "Example:\n  faas ls --collection team/api")]
    Ls {
        /// Collection.
        #[command(flatten)]
        collection: CollectionArg,
    },
    /// Print a function's source.
    #[command(after_help = "Example:\n  faas get hello --version 1 > hello.v1.mjs")]
    Get {
        /// Function name.
        name: String,
        /// Collection.
        #[command(flatten)]
        collection: CollectionArg,
        /// A version (default: the current one).
        #[arg(long, short = 'v', value_parser = clap::value_parser!(u64).range(1..))]
        version: Option<u64>,
    },
    /// List a function's versions.
    #[command(after_help = "Example:\n  faas versions hello")]
    Versions {
        /// Function name.
        name: String,
        /// Collection.
        #[command(flatten)]
        collection: CollectionArg,
    },
    /// Delete a function and all its versions.
    #[command(after_help = "Example:\n  faas rm hello --collection team/api")]
    Rm {
        /// Function name.
        name: String,
        /// Collection.
        #[command(flatten)]
        collection: CollectionArg,
    },
    /// Search the captured function logs (GET /function-logs).
    ///
    /// Needs capture on the dispatcher (`LOWCODE_FAAS_FUNCTION_LOGS=true`,
    /// off by default: then the server answers 404 LOGS_DISABLED).
    #[command(
        after_help = "Example:\n  faas logs --function hello --limit 20\n\nThe dispatcher keeps logs only with LOWCODE_FAAS_FUNCTION_LOGS=true (default off: 404 LOGS_DISABLED, exit 3).\nWithout it, `faas invoke NAME --logs` prints the console lines of that one run."
    )]
    Logs {
        /// Only this run.
        #[arg(long)]
        run_id: Option<String>,
        /// Only this function name.
        #[arg(long)]
        function: Option<String>,
        /// At most this many entries (server default 100, at most 500).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
    },
    /// Manage collections.
    #[command(
        subcommand,
        after_help = "Example:\n  faas collections create team/api --env REGION=eu"
    )]
    Collections(CollectionsCommand),
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  faas completions bash > ~/.local/share/bash-completion/completions/faas")]
    Completions {
        /// The shell.
        shell: Shell,
    },
}

/// Options of `invoke`.
#[derive(Debug, Args, Clone, Default)]
pub struct InvokeArgs {
    /// The input: inline JSON, `@file`, or `-` for stdin (default `{}`).
    #[arg(long, short = 'i')]
    pub input: Option<String>,
    /// Timeout in milliseconds (default: the server's).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Pin a version.
    #[arg(long, short = 'v', value_parser = clap::value_parser!(u64).range(1..))]
    pub version: Option<u64>,
    /// Ask for the run's logs and print them to stderr.
    #[arg(long)]
    pub logs: bool,
}

/// `faas collections …`.
#[derive(Debug, Subcommand)]
pub enum CollectionsCommand {
    /// List every collection.
    #[command(after_help = "Example:\n  faas collections ls")]
    Ls,
    /// Create a collection (and its missing ancestors).
    #[command(after_help = "Example:\n  faas collections create team/api --env REGION=eu")]
    Create {
        /// Collection path.
        path: String,
        /// The collection's own env.
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Replace a collection's env (`/` is the root collection).
    #[command(
        after_help = "Examples:\n  faas collections env team/api --env REGION=us\n  faas collections env /   (clears the root's env)"
    )]
    Env {
        /// Collection path (`/` for the root).
        path: String,
        /// The new env (none clears it).
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Delete an empty collection.
    #[command(after_help = "Example:\n  faas collections rm team/api")]
    Rm {
        /// Collection path.
        path: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("faas").chain(args.iter().copied()))
    }

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example() {
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            let help = sub.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(help.contains("faas "), "{} has no example", sub.get_name());
            for nested in sub.get_subcommands() {
                let help = nested.get_after_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(help.contains("faas "), "{} has no example", nested.get_name());
            }
        }
    }

    #[test]
    fn invoke_arguments() {
        let cli = parse(&[
            "--url",
            "http://h:1",
            "invoke",
            "hello",
            "-c",
            "team",
            "--env",
            "A=1",
            "--env",
            "B=x=y",
            "--input",
            "{}",
            "--timeout",
            "500",
            "--version",
            "2",
            "--logs",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.url, "http://h:1");
        assert!(cli.json);
        let Command::Invoke {
            name,
            collection,
            env,
            run,
        } = cli.command
        else {
            panic!("not invoke");
        };
        assert_eq!(name, "hello");
        assert_eq!(collection.collection.as_deref(), Some("team"));
        assert_eq!(env.env, vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]);
        assert_eq!(run.timeout, Some(500));
        assert_eq!(run.version, Some(2));
        assert!(run.logs);
    }

    #[test]
    fn usage_errors_are_refused_by_clap_with_status_2() {
        for args in [
            vec!["invoke"],
            vec!["invoke", "f", "--version", "0"],
            vec!["invoke", "f", "--env", "NOEQUALS"],
            vec!["invoke", "f", "--env", "LOWCODE_FAAS_X=1"],
            vec!["deploy"],
            vec!["completions", "tcsh"],
            vec!["nope"],
        ] {
            let err = parse(&args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn pull_url_is_not_the_global_url() {
        let cli = parse(&["--url", "http://h:1", "pull", "f", "https://example.com/f.mjs"]).unwrap();
        assert_eq!(cli.url, "http://h:1");
        let Command::Pull { source_url, .. } = cli.command else {
            panic!("not pull");
        };
        assert_eq!(source_url, "https://example.com/f.mjs");
    }

    #[test]
    fn collections_subcommands() {
        let cli = parse(&["collections", "env", "/", "--env", "A=1"]).unwrap();
        let Command::Collections(CollectionsCommand::Env { path, env }) = cli.command else {
            panic!("not collections env");
        };
        assert_eq!(path, "/");
        assert_eq!(env.env.len(), 1);
    }
}
