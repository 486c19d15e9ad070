//! Local stand-ins for AWS and Aliyun, started on 127.0.0.1 by tests and by `make demo`.

pub mod aws;
pub mod fake_lambda;
pub mod fake_oss;
pub mod fake_rds;
pub mod fake_rds_export;
pub mod fake_wecom;
pub mod fault_proxy;
pub mod lambda;
pub mod local_clouds;
pub mod moto;
pub mod paths;
pub mod s3_events;

/// Returns a TCP port that is free on 127.0.0.1 right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}
