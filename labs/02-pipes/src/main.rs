fn main() -> std::process::ExitCode {
    pipes::cli::main()
}
