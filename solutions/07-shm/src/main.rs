fn main() -> std::process::ExitCode {
    shm_solution::cli::main()
}
