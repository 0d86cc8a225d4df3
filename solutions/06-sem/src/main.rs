fn main() -> std::process::ExitCode {
    sem_solution::cli::main()
}
