//! The connections [`crate::Sandbox::serve`] accepts, each with a handle that lets the
//! front door close it without answering: once closed, every read and write of the
//! connection fails, so hyper cannot write the response and drops the socket. The client
//! sees the connection end before any status line.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP listener whose connections carry a [`Connection`] handle.
pub(crate) struct SandboxListener {
    inner: TcpListener,
    stopping: watch::Receiver<bool>,
}

impl SandboxListener {
    /// Wraps `inner`; `stopping` turns true (or closes) when the server shuts down.
    pub(crate) fn new(inner: TcpListener, stopping: watch::Receiver<bool>) -> SandboxListener {
        SandboxListener { inner, stopping }
    }
}

impl Listener for SandboxListener {
    type Io = ClosableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (ClosableStream, SocketAddr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        let handle = Connection {
            closed: Arc::new(AtomicBool::new(false)),
            stopping: self.stopping.clone(),
        };
        (
            ClosableStream {
                inner: stream,
                handle,
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One accepted connection, as the front door sees it (through `ConnectInfo`).
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    closed: Arc<AtomicBool>,
    stopping: watch::Receiver<bool>,
}

impl Connection {
    /// Makes every further read and write of the connection fail: whatever the server
    /// answers is never sent, and hyper drops the socket.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Resolves once the server serving this connection shuts down (or was dropped).
    pub(crate) async fn server_stopping(&self) {
        let mut stopping = self.stopping.clone();
        // An error means the sender is gone: the server was dropped.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }
}

impl Connected<IncomingStream<'_, SandboxListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, SandboxListener>) -> Connection {
        stream.io().handle.clone()
    }
}

/// A TCP stream that fails every operation once its [`Connection`] is closed.
pub(crate) struct ClosableStream {
    inner: TcpStream,
    handle: Connection,
}

impl ClosableStream {
    fn check(&self) -> io::Result<()> {
        if self.handle.closed.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the sandbox dropped this connection's answer",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for ClosableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClosableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
