fn main() -> std::process::ExitCode {
    processes_solution::cli::main()
}
