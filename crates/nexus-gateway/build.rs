//! Compiles the gRPC API in `proto/` with the protoc binary shipped by `protoc-bin-vendored`,
//! so a build needs no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let proto_root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let file = proto_root.join("nexus/v1/gateway.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("nexus_descriptor.bin"))
        .build_client(true)
        .build_server(true)
        // Lets clients print API objects as JSON.
        .message_attribute(".nexus.v1", "#[derive(serde::Serialize)]")
        .enum_attribute(".nexus.v1", "#[derive(serde::Serialize)]")
        .compile_with_config(config, &[file], &[proto_root])?;
    Ok(())
}
