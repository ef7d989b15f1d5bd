//! The `triagem` command: serve, check-config, token, migrate. Wiring only.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use triagem::auth::{self, Role};
use triagem::clock::SystemClock;
use triagem::config::{Config, LogFormat, DEFAULT_CONFIG_PATH};
use triagem::startup::Application;

#[derive(Parser)]
#[command(
    name = "triagem",
    version,
    about = "Emergency-department triage queue service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Validate a config file and print the effective settings.
    CheckConfig {
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Print a new random token once, and the [[auth.tokens]] table holding its hash.
    Token {
        /// reception, triage, clinician, display, monitor or admin.
        #[arg(long)]
        role: Role,
        /// Recorded as the actor of every change made with the token.
        #[arg(long, value_parser = token_name)]
        name: Option<String>,
    },
    /// Copy the SQLite journal of the config's storage.data_dir into an empty
    /// PostgreSQL database, and check the copy. Stop the service first.
    Migrate {
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// postgres://user[:password]@host[:port]/database. Without it, the
        /// config's storage.postgres_url or TRIAGEM_DATABASE_URL, which keeps
        /// the password out of the process list and the shell's history.
        #[arg(long)]
        to: Option<String>,
    },
}

/// A name `check-config` will take (`auth::token_name_refusal`).
fn token_name(s: &str) -> Result<String, String> {
    auth::token_name_refusal(s).map_or_else(|| Ok(s.to_owned()), Err)
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    // Colours only for a person at a terminal: in a log file or journald the
    // escape codes are noise a log reader shows as such.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Token { role, name } => {
            let token = auth::new_token();
            let name = name.unwrap_or_else(|| format!("{role}-{}", &token[..6]));
            // A TOML string, escaped, whatever the name holds (quotes, backslashes).
            let name = toml::Value::String(name);
            let hash = auth::sha256_hex(&token);
            print_or_fail(format_args!(
                "# The token (shown once; give it to the device or person, keep it secret):\n\
                 {token}\n\n\
                 # Add to the config (or to the file named by TRIAGEM_TOKENS_FILE, as [[tokens]]):\n\
                 [[auth.tokens]]\nname = {name}\nrole = \"{role}\"\nsha256 = \"{hash}\"\n"
            ))
        }
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(mut c) => {
                // The links' address as it comes out, when left to its default.
                if c.portal.public_url.is_none() {
                    c.portal.public_url = triagem::config::HttpUrl::try_from(c.public_url()).ok();
                }
                for w in c.warnings() {
                    eprintln!("warning: {w}");
                }
                match toml::to_string_pretty(&c) {
                    Ok(text) => print_or_fail(format_args!(
                        "# {} is valid; effective settings:\n{text}\n",
                        config.display()
                    )),
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Migrate { config, to } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let to = to.or_else(|| {
                let url = config.storage.postgres_url.as_ref()?;
                Some(url.as_str().to_owned())
            });
            let Some(to) = to else {
                eprintln!(
                    "error: say where to copy to: --to postgres://…, \
                     storage.postgres_url or {}",
                    triagem::config::ENV_DATABASE_URL
                );
                return ExitCode::FAILURE;
            };
            migrate(&config, &to)
        }
        Command::Serve { config } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            init_tracing(&config);
            for w in config.warnings() {
                tracing::warn!("{w}");
            }
            match serve(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Writes to stdout; a closed pipe (`triagem token | head -2`) or a full disk
/// is an error message and a failure status, not a panic.
fn print_or_fail(text: std::fmt::Arguments) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(text).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            ExitCode::FAILURE
        }
    }
}

fn migrate(config: &Config, to: &str) -> ExitCode {
    let dir = &config.storage.data_dir;
    match triagem::journal::migrate::sqlite_to_postgres(dir, to) {
        Ok(done) => {
            let mut text = format!("copied {} into PostgreSQL and checked:\n", dir.display());
            for (table, rows) in &done.tables {
                text.push_str(&format!("  {table:<12} {rows} rows\n"));
            }
            match &done.sequence {
                Some(s) => text.push_str(&format!(
                    "  protocol sequence: year {}, last {} (the next continues from it)\n",
                    s.year, s.last
                )),
                None => text.push_str("  protocol sequence: none issued yet\n"),
            }
            text.push_str(
                "set storage.backend = \"postgres\" and storage.postgres_url to serve from it\n",
            );
            print_or_fail(format_args!("{text}"))
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let addr = config.server.bind;
    let listener = TcpListener::bind(addr).map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr} (server.bind / TRIAGEM_BIND): {e}")
    })?;
    tracing::info!(%addr, data_dir = %config.storage.data_dir.display(), "starting triagem");
    let system = actix_web::rt::System::new();
    let result = system.block_on(async move {
        let app = Application::build(config, listener, Arc::new(SystemClock))?;
        app.run_until_stopped().await
    });
    // Not dropped: its runtime would wait for blocking work still stuck on a
    // database that stopped answering, and the process would never exit.
    // The journal is closed (or given up on) by now; the process ends next.
    std::mem::forget(system);
    result
}
