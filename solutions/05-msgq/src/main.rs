fn main() -> std::process::ExitCode {
    msgq_solution::cli::main()
}
