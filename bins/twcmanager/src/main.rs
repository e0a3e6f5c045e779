fn main() -> std::process::ExitCode {
    twcmanager::main()
}
