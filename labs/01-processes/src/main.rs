fn main() -> std::process::ExitCode {
    processes::cli::main()
}
