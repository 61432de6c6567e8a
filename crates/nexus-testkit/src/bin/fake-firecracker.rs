//! `fake-firecracker`: the fake Firecracker as a process, with the real binary's command line
//! (`--api-sock PATH`, `--id ID`, `--config-file FILE`, `--no-api`, …). Its guest and faults come
//! from the `FAKE_FIRECRACKER_*` environment variables (see `nexus_testkit::firecracker::env`).
//! It must never grow features the library fake lacks.

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = nexus_testkit::firecracker::run_cli(argv).await;
    std::process::exit(code);
}
