fn main() -> std::process::ExitCode {
    msgq::cli::main()
}
