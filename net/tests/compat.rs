//! A third-party async crate (futures-util's io utilities) on torsion::net streams,
//! through the `futures-io` traits.

mod util;

use futures_util::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, copy};
use torsion_net::{TcpListener, TcpStream};
use torsion_reactor::Reactor;
use util::run;

#[test]
fn futures_util_copy_bufreader_lines_and_read_to_end() {
    let reactor = Reactor::new().unwrap();
    let listener = TcpListener::bind(&reactor, "127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let r = reactor.clone();
    let (lines, rest) = run(&reactor, async move {
        // The echo server is futures-util's `copy` between the two halves.
        let server = r.spawn_local(async move {
            let (conn, _) = listener.accept().await.unwrap();
            let (rd, mut wr) = conn.split();
            let n = copy(rd, &mut wr).await.unwrap();
            wr.close().await.unwrap();
            n
        });
        let mut client = TcpStream::connect(&r, addr).await.unwrap();
        AsyncWriteExt::write_all(&mut client, b"alpha\nbeta\ngamma\n")
            .await
            .unwrap();
        client.close().await.unwrap(); // half-close: the server's copy ends
        let (rd, _wr) = client.split();
        let mut reader = BufReader::new(rd);
        let mut first = String::new();
        reader.read_line(&mut first).await.unwrap();
        let mut lines: Vec<String> = vec![first.trim_end().to_owned()];
        let mut second = String::new();
        reader.read_line(&mut second).await.unwrap();
        lines.push(second.trim_end().to_owned());
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(server.await.unwrap(), 17);
        (lines, rest)
    });
    assert_eq!(lines, ["alpha", "beta"]);
    assert_eq!(rest, b"gamma\n");
}
