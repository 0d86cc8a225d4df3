fn main() -> std::process::ExitCode {
    popen_solution::cli::main()
}
