fn main() -> std::process::ExitCode {
    fifos::cli::main()
}
