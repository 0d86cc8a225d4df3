fn main() -> std::process::ExitCode {
    popen::cli::main()
}
