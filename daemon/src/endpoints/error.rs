//! The errors of endpoints: a description that does not parse, a listen that fails, a
//! connection that does not happen.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use torsion_transport::Reason;

#[cfg(unix)]
use crate::systemd::ActivationError;

/// What is wrong with an endpoint description; [`EndpointError::Parse`] says which
/// description.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseProblem {
    /// The description is empty.
    Empty,
    /// The description starts with a named field (`port=80`) instead of a type (`tcp:`).
    NoType,
    /// No endpoint type of this name (`ssl` and `tls` until the TLS feature registers them).
    UnknownType(String),
    /// A backslash ends the description, escaping nothing.
    TrailingBackslash,
    /// A named field the endpoint type does not have.
    UnknownField {
        /// The name as written.
        field: String,
        /// The fields the type has.
        known: String,
    },
    /// A field given twice (by position and by name, or twice by name).
    DuplicateField(String),
    /// More positional fields than the type has parameters.
    TooManyValues {
        /// How many the type takes.
        max: usize,
        /// The first one too many.
        extra: String,
    },
    /// A required field is missing.
    Missing(&'static str),
    /// A field's value is not what the field takes.
    Invalid {
        /// The field.
        field: String,
        /// The value as written.
        value: String,
        /// What it should be ("a port number (0-65535)").
        expected: &'static str,
    },
    /// Fields that cannot go together, or one of several that must be given.
    Conflict(&'static str),
    /// A plugin's `check` panicked (the panic is caught; the message is here).
    PluginPanicked(String),
    /// The endpoint is of the wrong kind for the call (a client endpoint given to
    /// `listen`, a `udp:` endpoint given to a stream `listen`, ...).
    WrongKind {
        /// What the call takes.
        expected: &'static str,
    },
}

impl fmt::Display for ParseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseProblem::Empty => f.write_str("the description is empty (try tcp:8080)"),
            ParseProblem::NoType => f.write_str(
                "the first field must name the endpoint type (tcp:, unix:, systemd:, udp:)",
            ),
            ParseProblem::UnknownType(t)
                if t.eq_ignore_ascii_case("ssl") || t.eq_ignore_ascii_case("tls") =>
            {
                write!(
                    f,
                    "unknown endpoint type \"{t}\": TLS endpoints are not available in this build (torsion's `tls` feature is off)"
                )
            }
            ParseProblem::UnknownType(t) => write!(f, "unknown endpoint type \"{t}\""),
            ParseProblem::TrailingBackslash => {
                f.write_str("a backslash ends the description (write \\\\ for a backslash)")
            }
            ParseProblem::UnknownField { field, known } => {
                write!(f, "{field}: unknown field (known: {known})")
            }
            ParseProblem::DuplicateField(field) => write!(f, "{field}: given more than once"),
            ParseProblem::TooManyValues { max, extra } => write!(
                f,
                "\"{extra}\": one value too many (at most {max} without a name; escape a \
                 colon in a value as \\:)"
            ),
            ParseProblem::Missing(field) => write!(f, "{field}: missing"),
            ParseProblem::Invalid {
                field,
                value,
                expected,
            } => write!(f, "{field}: \"{value}\" is not {expected}"),
            ParseProblem::Conflict(why) => f.write_str(why),
            ParseProblem::WrongKind { expected } => write!(f, "not {expected}"),
            ParseProblem::PluginPanicked(message) => write!(f, "the endpoint plugin {message}"),
        }
    }
}

/// An endpoint that could not be parsed or could not listen.
#[derive(Debug)]
#[non_exhaustive]
pub enum EndpointError {
    /// The description does not parse.
    Parse {
        /// The description as given.
        endpoint: String,
        /// What is wrong with it.
        problem: ParseProblem,
    },
    /// A `systemd:` endpoint whose socket systemd did not pass, or passed wrongly.
    #[cfg(unix)]
    Activation {
        /// The description.
        endpoint: String,
        /// What is wrong.
        source: ActivationError,
    },
    /// The OS refused to listen (`AddrInUse`, `PermissionDenied`, ...).
    Listen {
        /// The description.
        endpoint: String,
        /// The OS error.
        source: io::Error,
    },
}

impl EndpointError {
    /// A parse error of `endpoint`.
    pub fn parse(endpoint: &str, problem: ParseProblem) -> Self {
        EndpointError::Parse {
            endpoint: endpoint.to_owned(),
            problem,
        }
    }

    /// The description the error is about.
    pub fn endpoint(&self) -> &str {
        match self {
            EndpointError::Parse { endpoint, .. } | EndpointError::Listen { endpoint, .. } => {
                endpoint
            }
            #[cfg(unix)]
            EndpointError::Activation { endpoint, .. } => endpoint,
        }
    }

    /// The parse problem, if this is a parse error.
    pub fn problem(&self) -> Option<&ParseProblem> {
        match self {
            EndpointError::Parse { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::Parse { endpoint, problem } => {
                write!(f, "endpoint \"{endpoint}\": {problem}")
            }
            #[cfg(unix)]
            EndpointError::Activation { endpoint, source } => {
                write!(f, "endpoint \"{endpoint}\": {source}")
            }
            EndpointError::Listen { endpoint, source } => {
                write!(f, "endpoint \"{endpoint}\": cannot listen: {source}")
            }
        }
    }
}

impl std::error::Error for EndpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EndpointError::Parse { .. } => None,
            #[cfg(unix)]
            EndpointError::Activation { source, .. } => Some(source),
            EndpointError::Listen { source, .. } => Some(source),
        }
    }
}

/// Why a client endpoint did not connect: the [`Failure`](torsion_transport::defer::Failure)
/// of [`connect`](super::connect)'s Deferred carries one (`failure.downcast_ref::<ConnectError>()`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnectError {
    /// The description does not parse (or is not a client endpoint).
    Parse {
        /// The description as given.
        endpoint: String,
        /// What is wrong with it.
        problem: ParseProblem,
    },
    /// The host name did not resolve.
    Resolve {
        /// The name.
        host: String,
        /// The resolver's error.
        error: String,
    },
    /// The host name resolved to no address.
    NoAddresses {
        /// The name.
        host: String,
    },
    /// Every attempt failed; one `(address, reason)` per address tried, in the order they
    /// were started.
    Failed {
        /// Where the connection was to go (`localhost port 8080`, `/run/x.sock`).
        destination: String,
        /// Each attempt and why it failed.
        attempts: Vec<(String, Reason)>,
    },
    /// The connection was made but the factory's `build_protocol` refused it (or panicked).
    Refused {
        /// Where the connection went.
        destination: String,
    },
    /// The OS error of an operation that is not an attempt (`bindAddress` unusable, ...).
    Io {
        /// Where the connection was to go.
        destination: String,
        /// The error.
        error: Arc<io::Error>,
    },
}

impl ConnectError {
    /// True when every attempt was refused by the peer (nobody listens there).
    pub fn is_refused(&self) -> bool {
        matches!(self, ConnectError::Failed { attempts, .. }
            if !attempts.is_empty()
                && attempts.iter().all(|(_, r)| matches!(r, Reason::ConnectionRefused)))
    }

    /// True when every attempt timed out.
    pub fn is_timed_out(&self) -> bool {
        matches!(self, ConnectError::Failed { attempts, .. }
            if !attempts.is_empty() && attempts.iter().all(|(_, r)| matches!(r, Reason::TimedOut)))
    }

    pub(crate) fn failed(
        destination: impl Into<String>,
        attempts: Vec<(SocketAddr, Reason)>,
    ) -> Self {
        ConnectError::Failed {
            destination: destination.into(),
            attempts: attempts
                .into_iter()
                .map(|(a, r)| (a.to_string(), r))
                .collect(),
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Parse { endpoint, problem } => {
                write!(f, "endpoint \"{endpoint}\": {problem}")
            }
            ConnectError::Resolve { host, error } => write!(f, "cannot resolve {host}: {error}"),
            ConnectError::NoAddresses { host } => write!(f, "{host} has no address"),
            ConnectError::Failed {
                destination,
                attempts,
            } => {
                write!(f, "cannot connect to {destination}")?;
                match attempts.as_slice() {
                    [(_, reason)] => write!(f, ": {reason}"),
                    _ => {
                        for (i, (addr, reason)) in attempts.iter().enumerate() {
                            let sep = if i == 0 { ": " } else { "; " };
                            write!(f, "{sep}{addr}: {reason}")?;
                        }
                        Ok(())
                    }
                }
            }
            ConnectError::Refused { destination } => {
                write!(
                    f,
                    "connected to {destination}, but the factory refused the connection"
                )
            }
            ConnectError::Io { destination, error } => {
                write!(f, "cannot connect to {destination}: {error}")
            }
        }
    }
}

impl std::error::Error for ConnectError {}
