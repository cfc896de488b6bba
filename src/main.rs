//! The `r53` binary: parse the command line, set up logging, run.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = r53::config::Cli::parse();
    r53::app::init_tracing();
    // The runtime's threads serve TCP and the API: like the UDP threads, they do not preempt
    // whoever woke them (`yield_on_wake`; TCP, by hand: 370k-460k q/s before, 605k-630k after).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(r53::dns::server::yield_on_wake)
        .build();
    let runtime = match runtime {
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
