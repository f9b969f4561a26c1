use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = baton::cli::Cli::parse();
    baton::logging::init();
    match baton::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
