//! TLS for `mqtts://`: the CA bundle (the system's or a `ca_file`) as a rustls configuration.

use rumqttc::tokio_rustls::rustls;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use twc_core::plugin::BuildError;

const SYSTEM_CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn load_roots(section: &str, path: &Path) -> Result<rustls::RootCertStore, BuildError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| {
        BuildError::new(
            section,
            format!("ca_file {:?} cannot be read: {e}", path.display()),
        )
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in iter {
        let cert = cert.map_err(|e| {
            BuildError::new(
                section,
                format!("ca_file {:?} is not valid PEM: {e}", path.display()),
            )
        })?;
        roots.add(cert).map_err(|e| {
            BuildError::new(
                section,
                format!("ca_file {:?} holds a bad certificate: {e}", path.display()),
            )
        })?;
    }
    if roots.is_empty() {
        return Err(BuildError::new(
            section,
            format!("ca_file {:?} holds no certificate", path.display()),
        ));
    }
    Ok(roots)
}

pub(super) fn tls_config(
    section: &str,
    ca_file: Option<&Path>,
) -> Result<rumqttc::TlsConfiguration, BuildError> {
    let path = match ca_file {
        Some(p) => p.to_path_buf(),
        None => SYSTEM_CA_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or_else(|| {
                BuildError::new(
                    section,
                    "mqtts:// needs CA certificates: no system bundle was found; set ca_file",
                )
            })?,
    };
    let roots = load_roots(section, &path)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BuildError::new(section, format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(rumqttc::TlsConfiguration::Rustls(Arc::new(config)))
}
