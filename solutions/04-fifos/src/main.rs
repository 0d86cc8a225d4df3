fn main() -> std::process::ExitCode {
    fifos_solution::cli::main()
}
