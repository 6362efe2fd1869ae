//! The async API as a user outside the repository sees it: imports only
//! `torsion::prelude::*`, `torsion::reactor::Reactor`, `torsion::transport::ProcessBuilder`
//! and `torsion::net::*` (the issue's names, exactly).
#![cfg(unix)]

use std::time::Duration;

use torsion::net::*;
use torsion::prelude::*;
use torsion::reactor::Reactor;
use torsion::transport::ProcessBuilder;

#[test]
fn every_name_of_the_issue_is_reachable_from_the_four_imports() {
    let reactor = Reactor::new().unwrap();
    let r = reactor.clone();
    let result = reactor.block_on(async move {
        // Tasks, join handles, abort, panics.
        let task: JoinHandle<u32> = r.spawn_local(async { 40 + 2 });
        assert_eq!(task.await, Ok(42));
        let forever = r.spawn_local(std::future::pending::<()>());
        forever.abort();
        assert!(forever.await.unwrap_err().is_cancelled());
        let bad = r.spawn_local(async { panic!("boom") });
        let err: JoinError = bad.await.unwrap_err();
        assert!(err.is_panic());

        // Time.
        r.sleep(Duration::from_millis(1)).await;
        let late: Result<(), Elapsed> = r
            .timeout(Duration::from_millis(1), r.sleep(Duration::from_secs(60)))
            .await;
        assert!(late.is_err());

        // Deferred <-> futures.
        let d = Deferred::from_future(&r, async { Ok::<_, Failure>(7) });
        assert_eq!(d.await.unwrap(), 7);

        // TCP.
        let listener = TcpListener::bind(&r, "127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = r.spawn_local(async move {
            let (stream, _peer) = listener.accept().await?;
            let (read, mut write) = stream.split();
            let mut lines = read.lines();
            while let Some(line) = lines.next_line().await? {
                write
                    .write_all(format!("{}\n", line.len()).as_bytes())
                    .await?;
            }
            write.shutdown().await
        });
        let mut client = TcpStream::connect(&r, addr).await?;
        client.write_all(b"four\nfive5\n").await?;
        client.shutdown().await?;
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        loop {
            let n = client.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"4\n5\n");
        server.await.unwrap()?;

        // Unix sockets.
        let path = std::env::temp_dir().join(format!("torsion-api-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let ul = UnixListener::bind(&r, &path)?;
        let p = path.clone();
        let r2 = r.clone();
        let c = r.spawn_local(async move {
            let mut s = UnixStream::connect(&r2, &p).await?;
            s.write_all(b"x").await
        });
        let (mut us, _) = ul.accept().await?;
        let mut one = [0u8; 1];
        assert_eq!(us.read(&mut one).await?, 1);
        c.await.unwrap()?;

        // Processes.
        let out: Output = ProcessBuilder::new("sh")
            .args(["-c", "echo o; echo e >&2; exit 4"])
            .output(&r)
            .await?;
        assert_eq!(
            (out.stdout.as_slice(), out.stderr.as_slice(), out.status),
            (&b"o\n"[..], &b"e\n"[..], ExitReason::exited(4))
        );
        assert_eq!(
            ProcessBuilder::new("true").status(&r).await?,
            ExitReason::ProcessDone
        );
        let mut child: Child = ProcessBuilder::new("cat").spawn_async(&r)?;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"meow").await?;
        drop(stdin);
        let all = child.stdout.take().unwrap().read_to_end().await?;
        assert_eq!(all, b"meow");
        assert_eq!(child.wait().await?, ExitReason::ProcessDone);
        std::io::Result::Ok(())
    });
    result.unwrap().unwrap();

    // Embedding.
    use std::os::fd::AsFd;
    let _fd = reactor.as_fd();
    // What the block_on left (closing connections) runs down; then the host may sleep.
    for _ in 0..100 {
        if reactor.next_timeout() != Some(Duration::ZERO) {
            break;
        }
        reactor.iterate(Duration::ZERO).unwrap();
    }
    assert_ne!(reactor.next_timeout(), Some(Duration::ZERO));
}
