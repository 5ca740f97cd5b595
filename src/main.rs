//! The `sekisho` binary: a thin shell around [`sekisho::cli::main`].

/// mimalloc instead of glibc's malloc: with thousands of blocking queries answered at once,
/// glibc's arenas spent a quarter of the agent's CPU (`benches/compare`, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sekisho::cli::main()
}
