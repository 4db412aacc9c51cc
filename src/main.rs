use clap::Parser;
use touchpoint_tracker::{
    cli,
    config::{Cli, Command},
    server, telemetry,
};

/// mimalloc instead of the system allocator: under single POSTs on SQLite
/// glibc's malloc and free were 13% of the service's CPU (`perf`), much of
/// it in the writer's and the projector's threads, which serialize on the
/// one write connection. With it, 2 to 9% more of those POSTs (`wrk`,
/// three pairs) and a lower peak RSS (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Cli::parse();
    telemetry::init(args.global.log_format);
    if matches!(args.command, None | Some(Command::Serve)) {
        // Each connection is a file: the common soft limit of 1,024 would
        // cap the service far below what the machine allows.
        match server::raise_open_files_limit() {
            Ok(limit) => tracing::info!(open_files_limit = limit, "open-files limit"),
            Err(err) => tracing::warn!(error = %err, "reading the open-files limit failed"),
        }
    }
    match cli::run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
