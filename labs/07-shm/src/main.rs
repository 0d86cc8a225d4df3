fn main() -> std::process::ExitCode {
    shm::cli::main()
}
