//! Generates the gRPC code of every `.proto` under `proto/` with a vendored
//! `protoc`, so a fresh machine needs no system package.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let protos = [
        PathBuf::from("../../proto/identity.proto"),
        PathBuf::from("../../proto/chat.proto"),
        PathBuf::from("../../proto/billing.proto"),
        PathBuf::from("../../proto/analytics.proto"),
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    let includes = [
        PathBuf::from("../../proto"),
        protoc_bin_vendored::include_path()?,
    ];
    tonic_prost_build::configure().compile_with_config(config, &protos, &includes)?;
    Ok(())
}
