//! The program: `cargo run -- --help`. Its code is in `lib.rs`, compiled
//! as a module of this program (see `Cargo.toml`).

#[path = "lib.rs"]
pub mod lab;

fn main() -> std::process::ExitCode {
    lab::cli::main()
}
