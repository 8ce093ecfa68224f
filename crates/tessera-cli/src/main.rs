//! `tessera`: the server (`tessera serve`) and its client.

/// Prints a line to standard output. A closed pipe (`tessera ... | head`) is not an
/// error worth a panic: the rest of the output is dropped.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod client;
mod commands;
mod login;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Bearer-token authentication and authorization for platform APIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the server is and how to talk to it.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Tessera's base URL [default: the one of `tessera login`, else http://127.0.0.1:8080].
    #[arg(long, env = "TESSERA_URL", global = true)]
    pub url: Option<String>,
    /// An API token to authenticate with.
    #[arg(
        long = "token",
        env = "TESSERA_API_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub api_token: Option<String>,
    /// The organization; default: the one the credentials belong to.
    #[arg(long, env = "TESSERA_ORGANIZATION_ID", global = true)]
    pub organization_id: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Operator commands that act on the database directly.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Signing keys (operator commands on the database, with the master key).
    Keys {
        #[command(subcommand)]
        command: commands::KeysCommand,
        #[command(flatten)]
        serve: Box<ServeArgs>,
    },
    /// Organizations, and Organization API tokens.
    #[command(subcommand, alias = "org")]
    Organization(commands::OrganizationCommand),
    /// Workspaces, and Workspace API tokens.
    #[command(subcommand, alias = "ws")]
    Workspace(commands::WorkspaceCommand),
    /// Deployments, and Deployment API tokens.
    #[command(subcommand)]
    Deployment(commands::DeploymentCommand),
    /// Users of the organization.
    #[command(subcommand)]
    User(commands::UserCommand),
    /// Sign in as a person: a browser with a loopback redirect, or --device.
    Login {
        /// Use the device grant: approve a code from any browser.
        #[arg(long)]
        device: bool,
        /// Print the sign-in address without trying to open a browser.
        #[arg(long)]
        no_browser: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// End the stored session on the server, then forget it.
    Logout,
    /// Who the current credentials are.
    Whoami {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Check a token against the server's published keys and print its claims.
    Verify {
        /// The token value.
        token: String,
        /// The audience to expect.
        #[arg(long, default_value = "tessera")]
        audience: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Server settings; each overrides the config file and `TESSERA_*` variables.
#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    /// TOML config file.
    #[arg(long, env = "TESSERA_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite file, dev credentials). Default ./tessera-data, or
    /// ./.tessera-dev with --dev.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free one).
    #[arg(long, global = true)]
    pub listen: Option<std::net::SocketAddr>,
    /// The `iss` of tokens. Default http://<listen>.
    #[arg(long, global = true)]
    pub issuer: Option<String>,
    /// The `aud` of tokens. Default tessera.
    #[arg(long, global = true)]
    pub audience: Option<String>,
    /// File with the base64 master key. Or set TESSERA_MASTER_KEY.
    #[arg(long, global = true)]
    pub master_key_file: Option<PathBuf>,
    /// postgres://... to use PostgreSQL instead of SQLite.
    #[arg(long, hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// Algorithm of new signing keys: EdDSA, ES256 or RS256.
    #[arg(long, global = true)]
    pub signing_algorithm: Option<String>,
    /// Dev mode: seed an organization and print ready-to-use credentials.
    #[arg(long, global = true)]
    pub dev: bool,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an organization with an owner user and an owner API token (printed once).
    Bootstrap {
        /// Name of the organization.
        #[arg(long)]
        organization: String,
        /// Email of its first Organization Owner.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        serve: Box<ServeArgs>,
    },
    /// Print a new random master key (base64), for TESSERA_MASTER_KEY or a key file.
    MasterKey,
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            init_tracing("info,tower_http=info,sqlx=warn");
            commands::serve(args).await
        }
        Command::Admin(AdminCommand::Bootstrap {
            organization,
            email,
            serve,
        }) => {
            init_tracing("warn");
            commands::bootstrap(*serve, &organization, &email).await
        }
        Command::Admin(AdminCommand::MasterKey) => {
            let (_, text) = tessera_core::keys::MasterKey::generate();
            out!("{}", String::from_utf8_lossy(text.expose()));
            Ok(())
        }
        Command::Keys { command, serve } => {
            init_tracing("warn");
            commands::keys(*serve, command).await
        }
        Command::Organization(cmd) => commands::organization(cmd).await,
        Command::Workspace(cmd) => commands::workspace(cmd).await,
        Command::Deployment(cmd) => commands::deployment(cmd).await,
        Command::User(cmd) => commands::user(cmd).await,
        Command::Verify {
            token,
            audience,
            client,
        } => commands::verify(&client, &token, &audience).await,
        Command::Login {
            device,
            no_browser,
            client,
        } => commands::login(&client, device, !no_browser).await,
        Command::Logout => commands::logout().await,
        Command::Whoami { client } => commands::whoami(&client).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_id_beginning_with_a_dash_is_an_id() {
        let cli =
            Cli::try_parse_from(["tessera", "keys", "retire", "-R3x_k", "--dev"]).expect("parsed");
        let Command::Keys { command, serve } = cli.command else {
            panic!("keys");
        };
        assert!(serve.dev, "options after the id still count");
        assert!(
            matches!(command, commands::KeysCommand::Retire { kid } if kid == "-R3x_k"),
            "the id as given"
        );
    }
}
