pub mod aws;
pub mod moto;
