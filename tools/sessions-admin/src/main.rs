//! `sessions-admin`: inspect and clean a session directory, or a
//! `wasi:keyvalue` bucket in Redis or Valkey (`--kv`, `--kv-cluster`).
//!
//! It runs the sqlite-sessions component itself (through the embedding
//! library's `Runtime`, one instance per invocation), so every rule is the
//! store's own: the same id parsing, id → file-name hashing, expiry
//! arithmetic and sweep.
//! Listings use the component's `admin` interface, which reads metadata
//! without counting as activity; deleting goes through `store.sweep` and
//! `store.destroy-id`, which never touch a file that is not a session of
//! this store.
//!
//! ```text
//! sessions-admin --dir ./sessions ls | show <id> | sweep | stats | destroy <id> | check
//! sessions-admin --kv redis://127.0.0.1:6379/ ls | ...
//! sessions-admin --kv-cluster redis://127.0.0.1:7000/,redis://127.0.0.1:7001/ ls | ...
//! ```
//!
//! Over Redis it runs the store's key-value build on the bucket the
//! application uses (`--bucket`, default `default`; `--kv-prefix` must
//! match the host's key prefix, default none).
//!
//! Exit codes: see [`failure::exit`].

mod admin;
mod check;
mod cli;
mod failure;
mod mounts;
mod output;

use std::process::ExitCode;

use clap::Parser as _;

use admin::Admin;
use cli::{Cli, Command};
use failure::Outcome;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match run(&cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("sessions-admin: {}", f.message);
            f.code
        }
    };
    ExitCode::from(code)
}

fn run(cli: &Cli) -> Outcome {
    let mut admin = Admin::open(cli)?;
    let outcome = match &cli.command {
        Command::Ls { json, budget } => admin.ls(*json, *budget),
        Command::Show { id } => admin.show(id),
        Command::Sweep { budget } => admin.sweep(*budget),
        Command::Stats { json, budget } => admin.stats(*json, *budget),
        Command::Destroy { id } => admin.destroy(id),
        Command::Check { json } => admin.check(*json, cli.store.lock_lease_ms),
    };
    // Run the guest's destructor, as a host must.
    admin.req.drop_store(admin.store)?;
    outcome
}
