//! `acp-gateway`: the command-line entry point. All behaviour lives in the library (`cli` module).

fn main() -> std::process::ExitCode {
    // Every connection costs a file descriptor: take what the operator allows (the hard limit) before
    // anything opens one; `serve` then keeps its connection cap below it.
    let _ = acp_gateway::service::listener::raise_fd_limit();
    acp_gateway::cli::run()
}
