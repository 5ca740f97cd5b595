//! The `sekisho` binary: a thin shell around [`sekisho::cli::main`].
fn main() -> std::process::ExitCode {
    sekisho::cli::main()
}
