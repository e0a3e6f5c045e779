//! twcmanager with this crate's plugin linked in: the same CLI and config, one more `[ems.*]`.
use twc_example_third_party_ems as _;

fn main() -> std::process::ExitCode {
    twcmanager::main()
}
