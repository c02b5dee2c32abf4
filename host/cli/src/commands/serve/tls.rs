//! TLS (`--tls-cert`, `--tls-key`): rustls on the `ring` provider,
//! offering HTTP/2 and HTTP/1.1 by ALPN.
//!
//! Both files may be reached through links (Kubernetes mounts a TLS Secret
//! so); the files they lead to must belong to the host's user or root and
//! be writable by no one else. A key that others can read is used, with a
//! warning: it should be mode 0600.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use flowgate::{FileError, FileProblem};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The largest certificate chain or key file read.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// An acceptor for the certificate chain and key in these PEM files, and a
/// warning to give if the key is not kept private.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<(TlsAcceptor, Option<String>)> {
    let pem = flowgate::read_through_links(cert, MAX_PEM_BYTES, false)
        .with_context(|| format!("reading the certificate chain `{}`", cert.display()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading the certificate chain `{}`", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in `{}`", cert.display());
    let (pem, warning) = match flowgate::read_through_links(key, MAX_PEM_BYTES, true) {
        Ok(pem) => (pem, None),
        Err(FileError::Refused { problem: FileProblem::Permissive { mode, .. }, .. }) => {
            let pem = flowgate::read_through_links(key, MAX_PEM_BYTES, false)
                .with_context(|| format!("reading the private key `{}`", key.display()))?;
            let warning = format!(
                "warning: the TLS key `{}` has mode {mode:o}: others can read it; run `chmod 600 {}`",
                key.display(),
                key.display()
            );
            (pem, Some(warning))
        }
        Err(err) => return Err(err).with_context(|| format!("reading the private key `{}`", key.display())),
    };
    let key =
        PrivateKeyDer::from_pem_slice(&pem).with_context(|| format!("reading the private key `{}`", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not make a TLS identity")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), warning))
}
