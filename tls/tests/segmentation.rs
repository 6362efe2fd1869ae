//! Property: any segmentation of the ciphertext yields the same plaintext. Two
//! `TlsProtocol`s over `StringTransport`s; the test carries each side's ciphertext to the
//! other cut into the segments proptest chooses.

mod common;

use std::rc::Rc;

use common::*;
use proptest::prelude::*;
use torsion_testing::{AccumulatingHandle, AccumulatingProtocol, StringTransport};
use torsion_tls::{TlsProtocol, TlsVersion};
use torsion_transport::Protocol;

/// Deliver `bytes` to `to` in segments of the sizes in `cuts` (cycled).
fn deliver(to: &mut TlsProtocol, bytes: &[u8], cuts: &[usize], at: &mut usize) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = cuts[*at % cuts.len()].clamp(1, rest.len());
        *at += 1;
        to.data_received(&rest[..n]);
        rest = &rest[n..];
    }
}

fn run(
    version: TlsVersion,
    to_server: &[u8],
    to_client: &[u8],
    cuts: &[usize],
) -> (AccumulatingHandle, AccumulatingHandle) {
    thread_local! {
        static PKI: Pki = Pki::new();
    }
    let (server_config, client_config) = PKI.with(|p| {
        (
            p.server_config(&[version]),
            p.client_config("localhost", &[version]),
        )
    });
    let (sapp, server) = AccumulatingProtocol::new();
    let (capp, client) = AccumulatingProtocol::new();
    let mut s = TlsProtocol::server(server_config, Box::new(sapp));
    let mut c = TlsProtocol::client(client_config, Box::new(capp));
    let (sl, cl) = (
        Rc::new(StringTransport::new()),
        Rc::new(StringTransport::new()),
    );
    s.connection_made(sl.clone());
    c.connection_made(cl.clone());
    // Written before the handshake: queued, then sent.
    client.transport().unwrap().write(to_server);
    server.transport().unwrap().write(to_client);
    let (mut ai, mut bi) = (0, 0);
    for _ in 0..100 {
        let (a, b) = (cl.take_value(), sl.take_value());
        if a.is_empty() && b.is_empty() {
            break;
        }
        deliver(&mut s, &a, cuts, &mut ai);
        deliver(&mut c, &b, cuts, &mut bi);
    }
    (server, client)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_segmentation_yields_the_same_plaintext(
        to_server in proptest::collection::vec(any::<u8>(), 0..40_000),
        to_client in proptest::collection::vec(any::<u8>(), 0..40_000),
        cuts in proptest::collection::vec(1usize..3000, 1..20),
        tls13 in any::<bool>(),
    ) {
        let version = if tls13 { TlsVersion::Tls13 } else { TlsVersion::Tls12 };
        let (server, client) = run(version, &to_server, &to_client, &cuts);
        prop_assert!(!server.closed() && !client.closed(), "{:?} {:?}", server.reason(), client.reason());
        prop_assert_eq!(server.data(), to_server);
        prop_assert_eq!(client.data(), to_client);
    }

    #[test]
    fn byte_at_a_time_still_works(
        to_server in proptest::collection::vec(any::<u8>(), 0..2_000),
    ) {
        let (server, _client) = run(TlsVersion::Tls13, &to_server, b"", &[1]);
        prop_assert_eq!(server.data(), to_server);
    }
}
