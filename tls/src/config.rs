//! Server and client configurations: certificates and keys from PEM, SNI, ALPN, trust
//! roots, client certificates. Built once, shared by every connection (`Arc` inside,
//! cheap to clone).

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::error::ConfigError;

/// The crypto provider every configuration uses: *ring* (it builds from the package
/// registry with a C compiler alone).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

impl TlsVersion {
    fn rustls(self) -> &'static SupportedProtocolVersion {
        match self {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        }
    }

    pub(crate) fn from_rustls(v: rustls::ProtocolVersion) -> Option<Self> {
        match v {
            rustls::ProtocolVersion::TLSv1_2 => Some(TlsVersion::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

fn versions(v: &[TlsVersion]) -> Vec<&'static SupportedProtocolVersion> {
    if v.is_empty() {
        vec![&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        v.iter().map(|v| v.rustls()).collect()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    fs::read(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })
}

fn certificates(pem: &[u8], source: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::Pem {
            source: source.to_owned(),
            error: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(ConfigError::NoCertificates {
            source: source.to_owned(),
        });
    }
    Ok(certs)
}

fn private_key(pem: &[u8], source: &str) -> Result<PrivateKeyDer<'static>, ConfigError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => ConfigError::NoPrivateKey {
            source: source.to_owned(),
        },
        e => ConfigError::Pem {
            source: source.to_owned(),
            error: e.to_string(),
        },
    })
}

/// A certificate chain (leaf first) and its private key: what a server (or a client that
/// authenticates) presents.
pub struct CertificateKey {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateKey")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Clone for CertificateKey {
    fn clone(&self) -> Self {
        CertificateKey {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl CertificateKey {
    /// The chain from the PEM file `certificate` and the key from the PEM file `key` (the
    /// same file may hold both).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`], [`ConfigError::Pem`], [`ConfigError::NoCertificates`],
    /// [`ConfigError::NoPrivateKey`].
    pub fn from_pem_files(
        certificate: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, ConfigError> {
        let (cert_path, key_path) = (certificate.as_ref(), key.as_ref());
        Ok(CertificateKey {
            chain: certificates(&read(cert_path)?, &cert_path.display().to_string())?,
            key: private_key(&read(key_path)?, &key_path.display().to_string())?,
        })
    }

    /// The chain and the key from PEM text in memory.
    ///
    /// # Errors
    ///
    /// As [`from_pem_files`](Self::from_pem_files), without the read.
    pub fn from_pem(certificate: &[u8], key: &[u8]) -> Result<Self, ConfigError> {
        Ok(CertificateKey {
            chain: certificates(certificate, "the certificate PEM")?,
            key: private_key(key, "the key PEM")?,
        })
    }

    /// This chain followed by the (intermediate) certificates in the PEM file `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`], [`ConfigError::Pem`], [`ConfigError::NoCertificates`].
    pub fn with_extra_chain_file(mut self, path: &Path) -> Result<Self, ConfigError> {
        self.chain
            .extend(certificates(&read(path)?, &path.display().to_string())?);
        Ok(self)
    }

    /// The chain and the key as DER.
    pub fn from_der(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        CertificateKey { chain, key }
    }

    fn certified(&self, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, ConfigError> {
        let key = provider
            .key_provider
            .load_private_key(self.key.clone_key())
            .map_err(|e| ConfigError::BadPrivateKey(e.to_string()))?;
        Ok(Arc::new(CertifiedKey::new(self.chain.clone(), key)))
    }
}

/// The certificate authorities a peer's certificate is verified against.
#[derive(Debug, Clone)]
pub struct TrustRoots {
    store: RootCertStore,
}

impl TrustRoots {
    /// The system's roots, as OpenSSL finds them (on Debian `/etc/ssl/certs`, from the
    /// `ca-certificates` package; `SSL_CERT_FILE` and `SSL_CERT_DIR` override).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoSystemRoots`] if no usable root was found.
    pub fn system() -> Result<Self, ConfigError> {
        let found = rustls_native_certs::load_native_certs();
        let mut store = RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = match found.errors.first() {
                Some(e) => e.to_string(),
                None => "the store is empty".to_owned(),
            };
            return Err(ConfigError::NoSystemRoots(why));
        }
        Ok(TrustRoots { store })
    }

    /// The roots in PEM text.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Pem`], [`ConfigError::NoCertificates`], [`ConfigError::BadRoot`].
    pub fn from_pem(pem: &[u8]) -> Result<Self, ConfigError> {
        Self::from_der(certificates(pem, "the trust roots PEM")?)
    }

    /// The roots in a PEM file, or in every `*.pem` / `*.crt` file of a directory.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`], [`ConfigError::Pem`], [`ConfigError::NoCertificates`] (no
    /// certificate in the file, or in the whole directory), [`ConfigError::BadRoot`].
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        if !path.is_dir() {
            return Self::from_der(certificates(&read(path)?, &path.display().to_string())?);
        }
        let entries = fs::read_dir(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "pem" || e == "crt" || e == "cer")
            })
            .collect();
        files.sort();
        let mut all = Vec::new();
        for file in files {
            let pem = read(&file)?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ConfigError::Pem {
                    source: file.display().to_string(),
                    error: e.to_string(),
                })?;
            all.extend(certs);
        }
        if all.is_empty() {
            return Err(ConfigError::NoCertificates {
                source: path.display().to_string(),
            });
        }
        Self::from_der(all)
    }

    /// The roots as DER certificates.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BadRoot`] if one is not a usable trust anchor.
    pub fn from_der(certs: Vec<CertificateDer<'static>>) -> Result<Self, ConfigError> {
        let mut store = RootCertStore::empty();
        for cert in certs {
            store
                .add(cert)
                .map_err(|e| ConfigError::BadRoot(e.to_string()))?;
        }
        Ok(TrustRoots { store })
    }

    /// How many roots there are.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// True when there is no root.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }
}

/// Chooses the server certificate by the name the client asked for (SNI).
#[derive(Debug)]
struct SniResolver {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello
            .server_name()
            .and_then(|n| self.by_name.get(&n.to_ascii_lowercase()))
            .or(self.default.as_ref())
            .cloned()
    }
}

#[derive(Debug, Clone)]
enum ClientAuth {
    None,
    Optional(TrustRoots),
    Required(TrustRoots),
}

/// A TLS server's configuration, shared by its connections.
///
/// ```
/// # fn demo(dir: &std::path::Path) -> Result<(), torsion_tls::ConfigError> {
/// use torsion_tls::{CertificateKey, TlsServerConfig};
/// let config = TlsServerConfig::builder()
///     .certificate(CertificateKey::from_pem_files(dir.join("cert.pem"), dir.join("key.pem"))?)
///     .alpn_protocols(["h2", "http/1.1"])
///     .build()?;
/// # let _ = config; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TlsServerConfig {
    config: Arc<ServerConfig>,
}

impl TlsServerConfig {
    /// A builder: at least one certificate, the rest optional.
    pub fn builder() -> TlsServerConfigBuilder {
        TlsServerConfigBuilder::default()
    }

    /// A configuration made with rustls directly.
    pub fn from_rustls(config: Arc<ServerConfig>) -> Self {
        TlsServerConfig { config }
    }

    /// The rustls configuration inside.
    pub fn rustls_config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}

/// Builds a [`TlsServerConfig`].
#[derive(Debug, Clone, Default)]
pub struct TlsServerConfigBuilder {
    default: Option<CertificateKey>,
    sni: Vec<(String, CertificateKey)>,
    alpn: Vec<Vec<u8>>,
    client_auth: Option<ClientAuth>,
    versions: Vec<TlsVersion>,
}

impl TlsServerConfigBuilder {
    /// The certificate presented when the client names no server, or one no SNI
    /// certificate matches.
    pub fn certificate(mut self, certificate: CertificateKey) -> Self {
        self.default = Some(certificate);
        self
    }

    /// The certificate presented to a client that asks for `server_name` (SNI; the name
    /// is matched without regard to case). A client asking for a name with neither an SNI
    /// certificate nor a default one fails its handshake.
    pub fn sni_certificate(mut self, server_name: &str, certificate: CertificateKey) -> Self {
        self.sni
            .push((server_name.to_ascii_lowercase(), certificate));
        self
    }

    /// The application protocols offered by ALPN, most preferred first.
    pub fn alpn_protocols<P: AsRef<[u8]>>(
        mut self,
        protocols: impl IntoIterator<Item = P>,
    ) -> Self {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// Require a client certificate signed by one of `roots`.
    pub fn client_auth_required(mut self, roots: TrustRoots) -> Self {
        self.client_auth = Some(ClientAuth::Required(roots));
        self
    }

    /// Ask for a client certificate signed by one of `roots`, but accept clients without
    /// one (a certificate that is presented must verify).
    pub fn client_auth_optional(mut self, roots: TrustRoots) -> Self {
        self.client_auth = Some(ClientAuth::Optional(roots));
        self
    }

    /// The protocol versions offered (default: TLS 1.3 and 1.2).
    pub fn versions(mut self, versions: &[TlsVersion]) -> Self {
        self.versions = versions.to_vec();
        self
    }

    /// Build the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoServerCertificate`] without any certificate,
    /// [`ConfigError::BadPrivateKey`], [`ConfigError::Rustls`] (client-verifier roots).
    pub fn build(self) -> Result<TlsServerConfig, ConfigError> {
        let provider = provider();
        if self.default.is_none() && self.sni.is_empty() {
            return Err(ConfigError::NoServerCertificate);
        }
        let default = match &self.default {
            Some(c) => Some(c.certified(&provider)?),
            None => None,
        };
        let mut by_name = HashMap::new();
        for (name, c) in &self.sni {
            by_name.insert(name.clone(), c.certified(&provider)?);
        }
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions(&self.versions))?;
        let builder = match self.client_auth.unwrap_or(ClientAuth::None) {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(roots) | ClientAuth::Required(roots) if roots.is_empty() => {
                return Err(ConfigError::BadRoot(
                    "client-certificate verification needs at least one root".to_owned(),
                ));
            }
            ClientAuth::Optional(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots.store), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| ConfigError::BadRoot(e.to_string()))?,
            ),
            ClientAuth::Required(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots.store), provider)
                    .build()
                    .map_err(|e| ConfigError::BadRoot(e.to_string()))?,
            ),
        };
        let mut config = builder.with_cert_resolver(Arc::new(SniResolver { by_name, default }));
        config.alpn_protocols = self.alpn;
        Ok(TlsServerConfig {
            config: Arc::new(config),
        })
    }
}

/// A TLS client's configuration: the roots it trusts, the server name it asks for and
/// verifies, ALPN, and an optional client certificate.
///
/// ```no_run
/// # fn demo() -> Result<(), torsion_tls::ConfigError> {
/// use torsion_tls::TlsClientConfig;
/// // The system's roots, verifying example.com.
/// let config = TlsClientConfig::builder().server_name("example.com").build()?;
/// # let _ = config; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TlsClientConfig {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl TlsClientConfig {
    /// A builder: the system's roots unless others are given; a server name is required.
    pub fn builder() -> TlsClientConfigBuilder {
        TlsClientConfigBuilder::default()
    }

    /// A configuration made with rustls directly, for `server_name`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidServerName`].
    pub fn from_rustls(config: Arc<ClientConfig>, server_name: &str) -> Result<Self, ConfigError> {
        Ok(TlsClientConfig {
            config,
            server_name: server_name_of(server_name)?,
        })
    }

    /// The same configuration for another server name (cheap: the rustls configuration
    /// is shared).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidServerName`].
    pub fn with_server_name(&self, server_name: &str) -> Result<Self, ConfigError> {
        Ok(TlsClientConfig {
            config: self.config.clone(),
            server_name: server_name_of(server_name)?,
        })
    }

    /// The server name sent by SNI and verified against the certificate.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }

    /// The rustls configuration inside.
    pub fn rustls_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }
}

fn server_name_of(name: &str) -> Result<ServerName<'static>, ConfigError> {
    ServerName::try_from(name.to_owned())
        .map_err(|_| ConfigError::InvalidServerName(name.to_owned()))
}

/// Builds a [`TlsClientConfig`].
#[derive(Debug, Clone, Default)]
pub struct TlsClientConfigBuilder {
    server_name: Option<String>,
    roots: Option<TrustRoots>,
    alpn: Vec<Vec<u8>>,
    certificate: Option<CertificateKey>,
    versions: Vec<TlsVersion>,
}

impl TlsClientConfigBuilder {
    /// The server's name (DNS name or IP address): sent by SNI, and the name its
    /// certificate must be valid for.
    pub fn server_name(mut self, name: &str) -> Self {
        self.server_name = Some(name.to_owned());
        self
    }

    /// Verify the server against `roots` instead of the system's roots.
    pub fn trust_roots(mut self, roots: TrustRoots) -> Self {
        self.roots = Some(roots);
        self
    }

    /// The application protocols offered by ALPN, most preferred first.
    pub fn alpn_protocols<P: AsRef<[u8]>>(
        mut self,
        protocols: impl IntoIterator<Item = P>,
    ) -> Self {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// Present `certificate` when the server asks for a client certificate.
    pub fn client_certificate(mut self, certificate: CertificateKey) -> Self {
        self.certificate = Some(certificate);
        self
    }

    /// The protocol versions offered (default: TLS 1.3 and 1.2).
    pub fn versions(mut self, versions: &[TlsVersion]) -> Self {
        self.versions = versions.to_vec();
        self
    }

    /// Build the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoServerName`], [`ConfigError::InvalidServerName`],
    /// [`ConfigError::NoSystemRoots`] (no roots given and none in the system),
    /// [`ConfigError::BadPrivateKey`] / [`ConfigError::Rustls`] (the client certificate).
    pub fn build(self) -> Result<TlsClientConfig, ConfigError> {
        let name = self.server_name.ok_or(ConfigError::NoServerName)?;
        let server_name = server_name_of(&name)?;
        let roots = match self.roots {
            Some(r) => r,
            None => TrustRoots::system()?,
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions(&self.versions))?
            .with_root_certificates(roots.store);
        let mut config = match self.certificate {
            Some(c) => builder.with_client_auth_cert(c.chain, c.key)?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn;
        Ok(TlsClientConfig {
            config: Arc::new(config),
            server_name,
        })
    }
}
