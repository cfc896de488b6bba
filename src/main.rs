//! The `r53` binary: parse the command line, set up logging, run.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = r53::config::Cli::parse();
    r53::app::init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("r53: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(r53::app::main(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // Client commands fail the way the aws CLI does: its message, its exit code.
        Err(e) => match e.downcast_ref::<r53::cli::CliError>() {
            Some(client) => {
                eprintln!("{client}");
                std::process::ExitCode::from(client.exit_code())
            }
            None => {
                eprintln!("r53: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
