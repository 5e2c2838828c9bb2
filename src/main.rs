//! `acp-gateway`: the command-line entry point. All behaviour lives in the library (`cli` module).

fn main() -> std::process::ExitCode {
    acp_gateway::cli::run()
}
