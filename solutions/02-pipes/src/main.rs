fn main() -> std::process::ExitCode {
    pipes_solution::cli::main()
}
