//! The TLS configuration the client hands to reqwest.
//!
//! reqwest is built with `rustls-no-provider`: left to itself it uses the rustls crypto
//! provider installed as the process default, and panics when there is none. A library must
//! not install one: the process default belongs to the application (which may want aws-lc-rs,
//! a FIPS provider, or to install its own later and fail because one is already there), and
//! installing it would change how every other rustls user in the process behaves. So the
//! client builds its own rustls configuration, the way reqwest 0.13 does, and passes it to
//! reqwest ready-made: the process default provider when the application installed one,
//! `ring` otherwise, in both cases without installing anything.
//!
//! reqwest only accepts the configuration if it is of the same rustls version as its own
//! (`ClientBuilder::tls_backend_preconfigured`); otherwise building the client fails with an
//! error, so a mismatch cannot go unnoticed.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls_platform_verifier::BuilderVerifierExt;

/// The crypto provider: the process default if one is installed, `ring` otherwise.
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// TLS 1.2 and 1.3, server certificates checked by the platform verifier (the operating
/// system's trust store, as reqwest does by default), ALPN `h2` then `http/1.1`.
pub(crate) fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_offers_http2_and_http1() {
        let config = client_config().unwrap();
        assert_eq!(config.alpn_protocols, [&b"h2"[..], &b"http/1.1"[..]]);
        assert!(CryptoProvider::get_default().is_none());
    }
}
