//! `futures_io::AsyncRead` / `AsyncWrite` for the streams (feature `futures-io`), so
//! third-party async protocol crates run on them. `poll_flush` is immediate (the transport
//! owns the buffer and sends it from the loop); `poll_close` half-closes, as `shutdown`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use crate::process::{ChildStdin, ChildStdout};
use crate::stream::{ReadHalf, WriteHalf};
use crate::tcp::TcpStream;
#[cfg(unix)]
use crate::unix::UnixStream;

macro_rules! read_impl {
    ($t:ty, $io:expr) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                #[allow(clippy::redundant_closure_call)]
                ($io)(&*self).poll_read(cx, buf)
            }
        }
    };
}

macro_rules! write_impl {
    ($t:ty, $io:expr) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                #[allow(clippy::redundant_closure_call)]
                ($io)(&*self).poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                #[allow(clippy::redundant_closure_call)]
                ($io)(&*self).poll_shutdown(cx)
            }
        }
    };
}

read_impl!(TcpStream, |s: &TcpStream| s.io.clone());
write_impl!(TcpStream, |s: &TcpStream| s.io.clone());
#[cfg(unix)]
read_impl!(UnixStream, |s: &UnixStream| s.io.clone());
#[cfg(unix)]
write_impl!(UnixStream, |s: &UnixStream| s.io.clone());
read_impl!(ReadHalf, |s: &ReadHalf| s.io_rc());
write_impl!(WriteHalf, |s: &WriteHalf| s.io_rc());

impl AsyncRead for ChildStdout {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        ChildStdout::poll_read(&self, cx, buf)
    }
}

impl AsyncWrite for ChildStdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ChildStdin::poll_write(&self, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.close();
        Poll::Ready(Ok(()))
    }
}
