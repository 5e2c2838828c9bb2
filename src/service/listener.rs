//! The listening socket, bounded: at most `max_connections` connections at once, and none that sits
//! silent for longer than `idle_timeout_seconds`.
//!
//! axum-server (which serves both plain HTTP and HTTPS here) accepts in a loop and spawns a task per
//! connection. [`CappedListener`] takes a permit before each `accept`, so that when the cap is reached
//! further clients wait in the kernel's listen queue (using no descriptor of ours) instead of being
//! accepted until `accept` fails with `EMFILE`, which is what stopped `/healthz` under a flood of idle
//! connections. The permit travels with the connection in [`CappedStream`] and is returned when the
//! connection is dropped. The same stream closes a connection on which nothing is read or written for
//! the idle time, whatever the protocol (HTTP/1.1, HTTP/2, a TLS handshake): hyper's own timers
//! cover the header read of HTTP/1.1 only.
//!
//! [`raise_fd_limit`] lifts the soft descriptor limit to the hard one at start, and
//! [`connection_cap`] keeps the cap below what the process can open.

use std::io;
use std::net::SocketAddr;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Descriptors kept free of connections for the database pool, the spool, SMTP and HTTPS sinks and
/// the log.
pub const FD_RESERVE: u64 = 128;

/// The peer of a capped connection (axum-server names connections by their address type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<PeerAddr> for SocketAddr {
    fn connect_info(target: PeerAddr) -> Self {
        target.0
    }
}

impl axum_server::Address for PeerAddr {
    type Stream = CappedStream;
    type Listener = CappedListener;
}

/// A TCP listener that accepts only while a connection permit is free.
pub struct CappedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    idle: Duration,
}

impl CappedListener {
    pub fn new(inner: TcpListener, max_connections: usize, idle: Duration) -> CappedListener {
        CappedListener { inner, permits: Arc::new(Semaphore::new(max_connections)), idle }
    }
}

impl axum_server::AddrListener<CappedStream, PeerAddr> for CappedListener {
    async fn bind_to(addr: PeerAddr) -> io::Result<Self> {
        // Not used: the gateway binds its own socket (to report bind errors before it starts).
        let inner = TcpListener::bind(addr.0).await?;
        Ok(CappedListener::new(inner, crate::config::ServerLimits::default().max_connections, Duration::from_secs(120)))
    }

    async fn accept_stream(&self) -> io::Result<(CappedStream, PeerAddr)> {
        // Never closed, so acquiring cannot fail.
        let permit = self.permits.clone().acquire_owned().await.map_err(io::Error::other)?;
        let (stream, peer) = self.inner.accept().await?;
        // Small responses go out at once (as axum::serve does).
        let _ = stream.set_nodelay(true);
        Ok((CappedStream::new(stream, permit, self.idle), PeerAddr(peer)))
    }

    fn get_local_addr(&self) -> io::Result<PeerAddr> {
        self.inner.local_addr().map(PeerAddr)
    }
}

/// An accepted connection: holds its permit, and fails its reads and writes once nothing has moved
/// for the idle time.
pub struct CappedStream {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl CappedStream {
    fn new(inner: TcpStream, permit: OwnedSemaphorePermit, idle: Duration) -> CappedStream {
        CappedStream { inner, _permit: permit, idle, deadline: Box::pin(tokio::time::sleep(idle)) }
    }

    fn progressed(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// When the I/O is pending: an error once the idle time is over (the waker is registered with
    /// the timer, so an idle connection is woken to be closed).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle for longer than server.limits.idle_timeout_seconds")
}

impl AsyncRead for CappedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }
}

impl CappedStream {
    /// A write's outcome, seen by the idle clock.
    fn wrote(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(Ok(n)) if n > 0 => {
                self.progressed();
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        self.wrote(cx, r)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Raises the soft limit on open descriptors to the hard limit (what the operator allows the
/// process), and returns the soft limit in force. Containers and systemd often start services with a
/// soft limit of 1,024 and a far higher hard one; every connection costs a descriptor.
#[cfg(unix)]
pub fn raise_fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer, which lives
    // on this stack frame for the duration of the call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    Some(lim.rlim_cur as u64)
}

#[cfg(not(unix))]
pub fn raise_fd_limit() -> Option<u64> {
    None
}

/// The soft descriptor limit in force, without changing it.
#[cfg(unix)]
pub fn fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: as in `raise_fd_limit`.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur as u64)
}

#[cfg(not(unix))]
pub fn fd_limit() -> Option<u64> {
    None
}

/// The configured connection cap, lowered so that connections plus the reserve fit the descriptor
/// limit (at least 1).
pub fn connection_cap(configured: usize, fd_limit: Option<u64>) -> usize {
    match fd_limit {
        Some(l) => {
            let room = l.saturating_sub(FD_RESERVE).max(1);
            configured.min(usize::try_from(room).unwrap_or(usize::MAX))
        }
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        assert_eq!(connection_cap(1024, Some(1024)), 1024 - FD_RESERVE as usize);
        assert_eq!(connection_cap(1024, Some(1_048_576)), 1024);
        assert_eq!(connection_cap(1024, None), 1024);
        assert_eq!(connection_cap(1024, Some(10)), 1);
    }
}
