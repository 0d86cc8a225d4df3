fn main() -> std::process::ExitCode {
    sem::cli::main()
}
