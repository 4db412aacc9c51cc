//! The HTTP server: poem's endpoint served over hyper, with the defences
//! poem's own `Server` lacks (it builds hyper without a timer, has no
//! connection cap and retries a failing `accept` in a hot loop, so a few
//! hundred idle sockets could stop the service):
//!
//! - a connection with no request in progress is closed after
//!   `keep_alive_idle` without a byte, or `header_read_timeout` after the
//!   first byte of a request head that is still incomplete (slowloris);
//! - a request body that sends nothing for `body_read_timeout` fails, and
//!   its connection is closed (hyper never reuses a connection whose body
//!   was not read to its end);
//! - a client that stops reading its answer for `send_timeout` is cut off;
//! - at most `max_connections` connections are open. A new connection
//!   beyond the cap, or an `accept` that fails for want of file
//!   descriptors, closes the connections idle the longest to make room (as
//!   nginx reuses idle connections); when none is idle, accepting pauses
//!   until one closes, and `accept` errors back off instead of spinning.
//!
//! The timers are ours rather than hyper's `header_read_timeout`: hyper's
//! starts only once the protocol (HTTP/1 or HTTP/2) has been sniffed from
//! the first 24 bytes, so a client sending nothing, or a byte at a time,
//! was never timed out; and it counts the wait between keep-alive requests
//! as header time.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::Duration,
};

use http_body_util::combinators::BoxBody;
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use poem::{
    endpoint::BoxEndpoint,
    http::{self, uri::Scheme},
    web::{LocalAddr, RemoteAddr},
    Endpoint, EndpointExt, Response,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{watch, Notify, OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};

/// How connections are limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettings {
    /// Once a request's first byte is in, how long its head (request line
    /// and headers) may take to arrive in full.
    pub header_read_timeout: Duration,
    /// How long a connection may wait for a request without receiving a
    /// byte: after it opens, and after each answer.
    pub keep_alive_idle: Duration,
    /// How long a request body may go without sending a byte while the
    /// service waits for it.
    pub body_read_timeout: Duration,
    /// How long the service waits for a client that has stopped reading
    /// its answer.
    pub send_timeout: Duration,
    /// Most connections open at once; `None`: from the open-files limit
    /// (see [`max_connections`]).
    pub max_connections: Option<usize>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_idle: Duration::from_secs(75),
            body_read_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(30),
            max_connections: None,
        }
    }
}

/// File descriptors kept out of the connection cap: the database's files and
/// sockets, the log, the listener.
const RESERVED_FILES: usize = 64;
/// The cap when none is configured, however high the open-files limit: each
/// connection costs buffers and a task.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Idle connections closed at once when `accept` runs out of descriptors.
const EVICTION_BATCH: usize = 32;

/// The connection cap: `configured`, or the open-files limit less what the
/// rest of the process needs, at most [`DEFAULT_MAX_CONNECTIONS`].
pub fn max_connections(configured: Option<usize>) -> usize {
    let cap = configured.unwrap_or_else(|| {
        open_files_limit()
            .map(|files| files.saturating_sub(RESERVED_FILES))
            .unwrap_or(DEFAULT_MAX_CONNECTIONS)
            .min(DEFAULT_MAX_CONNECTIONS)
    });
    // The drain at shutdown takes every permit at once, counted in u32.
    cap.clamp(1, u32::MAX as usize)
}

/// The process's soft limit of open files, if it can be read.
fn open_files_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    Some(usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
}

/// Raises the soft limit of open files to the hard limit, as many servers
/// do (the common soft default of 1,024 is too low for a server); returns
/// the limit now in force.
pub fn raise_open_files_limit() -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur >= limit.rlim_max {
        return Ok(limit.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        // Some systems refuse an unlimited hard limit as a soft one; the
        // limit stays what it was.
        return Ok(limit.rlim_cur);
    }
    Ok(raised.rlim_cur)
}

/// Serves `endpoint` on `listener` until `shutdown` completes; then stops
/// accepting, lets requests in progress finish for up to `grace`, and
/// closes what is left.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()>
where
    E: Endpoint<Output = Response> + 'static,
{
    let local_addr = listener.local_addr()?;
    let cap = max_connections(settings.max_connections);
    tracing::info!(max_connections = cap, "connection cap");
    let endpoint: Arc<BoxEndpoint<'static, Response>> = Arc::new(endpoint.boxed());
    let permits = Arc::new(Semaphore::new(cap));
    let registry = Arc::new(Registry::default());
    let (phase, phase_watch) = watch::channel(Phase::Serving);

    let mut builder = auto::Builder::new(TokioExecutor::new());
    // What poem's server sets for HTTP/2 (prior knowledge, `h2c`).
    builder
        .http2()
        .max_pending_accept_reset_streams(20)
        .max_header_list_size(16 * 1024);
    let builder = Arc::new(builder);

    let mut accept_errors = Backoff::default();
    let mut accept_warning = RateLimitedLog::default();
    let mut cap_warning = RateLimitedLog::default();
    tokio::pin!(shutdown);
    'accept: loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // The client gave up before we took its connection.
            Err(err) if is_per_connection(&err) => continue,
            Err(err) => {
                let evicted = if is_out_of_files(&err) {
                    registry.evict_idle(EVICTION_BATCH)
                } else {
                    0
                };
                // Room was made: the next accept can succeed at once;
                // otherwise wait longer each time, not in a hot loop.
                let pause = if evicted > 0 {
                    accept_errors.reset();
                    Duration::from_millis(1)
                } else {
                    accept_errors.next()
                };
                if let Some(suppressed) = accept_warning.allow() {
                    tracing::warn!(
                        error = %err,
                        idle_connections_closed = evicted,
                        retry_in_ms = pause.as_millis() as u64,
                        similar_errors_not_logged = suppressed,
                        "accepting a connection failed"
                    );
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(pause) => continue,
                }
            }
        };
        accept_errors.reset();
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if let Some(suppressed) = cap_warning.allow() {
                    tracing::warn!(
                        max_connections = cap,
                        similar_warnings_not_logged = suppressed,
                        "at the connection cap; closing the connections idle the longest"
                    );
                }
                // Close the connection idle the longest; when every one is
                // busy, wait (no further accept) until one closes.
                loop {
                    registry.evict_idle(1);
                    tokio::select! {
                        _ = &mut shutdown => break 'accept,
                        permit = tokio::time::timeout(
                            Duration::from_millis(100),
                            permits.clone().acquire_owned(),
                        ) => {
                            if let Ok(Ok(permit)) = permit {
                                break permit;
                            }
                        }
                    }
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = registry.register();
        tokio::spawn(serve_connection(Accepted {
            stream,
            peer,
            local_addr,
            endpoint: endpoint.clone(),
            builder: builder.clone(),
            settings,
            connection,
            registry: registry.clone(),
            phase: phase_watch.clone(),
            _permit: permit,
        }));
    }

    drop(listener);
    let _ = phase.send(Phase::Draining);
    let everyone_gone = permits.clone().acquire_many_owned(cap as u32);
    tokio::pin!(everyone_gone);
    if tokio::time::timeout(grace, &mut everyone_gone)
        .await
        .is_err()
    {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "requests still in progress after the grace period; closing their connections"
        );
        let _ = phase.send(Phase::Forced);
        let _ = everyone_gone.await;
    }
    Ok(())
}

/// Errors of `accept` that concern only the connection being accepted.
fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// The process or the system is out of file descriptors (or of the memory
/// behind a socket): closing idle connections frees some.
fn is_out_of_files(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// No new requests; those in progress finish.
    Draining,
    /// The grace period is over.
    Forced,
}

/// The pause after a failed `accept`: 5 ms, doubling up to 1 s.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let pause = Duration::from_millis(5 << self.failures.min(8)).min(Duration::from_secs(1));
        self.failures = self.failures.saturating_add(1);
        pause
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// At most one log line per period, counting those it held back: a flood
/// must not turn into a flood of log lines.
#[derive(Default)]
struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    const PERIOD: Duration = Duration::from_secs(10);

    /// `Some(held back since the last line)` when a line may be logged.
    fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + Self::PERIOD) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The open connections, so that the ones idle the longest can be closed.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
}

impl Registry {
    fn register(&self) -> Arc<Connection> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection::new(id));
        lock(&self.open).insert(id, connection.clone());
        connection
    }

    fn remove(&self, id: u64) {
        lock(&self.open).remove(&id);
    }

    /// Asks up to `n` connections with no request in progress, those idle
    /// the longest first, to close; returns how many were asked.
    fn evict_idle(&self, n: usize) -> usize {
        let open = lock(&self.open);
        let mut idle: Vec<(Instant, &Arc<Connection>)> = open
            .values()
            .filter(|c| {
                c.in_flight.load(Ordering::Acquire) == 0 && !c.evict.load(Ordering::Acquire)
            })
            .map(|c| (lock(&c.clock).idle_since, c))
            .collect();
        if idle.len() > n {
            idle.select_nth_unstable_by_key(n, |(since, _)| *since);
            idle.truncate(n);
        }
        for (_, connection) in &idle {
            connection.evict.store(true, Ordering::Release);
            connection.wake.notify_one();
        }
        idle.len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The data stays consistent whatever panicked while holding it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a connection's timers read, shared by its socket, its requests and
/// its task.
struct Connection {
    id: u64,
    /// Requests handed to the endpoint whose answer is not fully produced.
    in_flight: AtomicUsize,
    clock: Mutex<Clock>,
    /// Asked to close (see `evict`).
    wake: Notify,
    /// Asked to close to make room, if it has no request in progress.
    evict: AtomicBool,
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    /// Since when the connection has had nothing to do: opened, or its last
    /// byte written.
    idle_since: Instant,
    /// The first byte of a request head, received while idle.
    head_started: Option<Instant>,
    /// Since when the client has not taken the bytes the service writes.
    write_blocked_since: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
enum Expiry {
    Idle,
    Header,
    Send,
}

impl Connection {
    fn new(id: u64) -> Self {
        Connection {
            id,
            in_flight: AtomicUsize::new(0),
            clock: Mutex::new(Clock {
                idle_since: Instant::now(),
                head_started: None,
                write_blocked_since: None,
            }),
            wake: Notify::new(),
            evict: AtomicBool::new(false),
        }
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// When the connection must close, and why, as things stand.
    fn deadline(&self, settings: &ServerSettings) -> Option<(Instant, Expiry)> {
        let clock = *lock(&self.clock);
        let send = clock
            .write_blocked_since
            .map(|since| (since + settings.send_timeout, Expiry::Send));
        let waiting = self.is_idle().then(|| match clock.head_started {
            None => (clock.idle_since + settings.keep_alive_idle, Expiry::Idle),
            Some(since) => (since + settings.header_read_timeout, Expiry::Header),
        });
        match (send, waiting) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn request_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut clock = lock(&self.clock);
            clock.idle_since = Instant::now();
            clock.head_started = None;
        }
    }

    fn bytes_read(&self) {
        if !self.is_idle() {
            return;
        }
        let mut clock = lock(&self.clock);
        if clock.head_started.is_none() {
            clock.head_started = Some(Instant::now());
        }
    }

    fn write_progress(&self, progressed: bool) {
        let mut clock = lock(&self.clock);
        if progressed {
            clock.write_blocked_since = None;
            clock.idle_since = Instant::now();
        } else if clock.write_blocked_since.is_none() {
            clock.write_blocked_since = Some(Instant::now());
        }
    }
}

struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    local_addr: SocketAddr,
    endpoint: Arc<BoxEndpoint<'static, Response>>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    settings: ServerSettings,
    connection: Arc<Connection>,
    registry: Arc<Registry>,
    phase: watch::Receiver<Phase>,
    /// Released when the connection closes.
    _permit: OwnedSemaphorePermit,
}

/// Leaves the registry however the connection's task ends.
struct Registered(Arc<Registry>, u64);

impl Drop for Registered {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

async fn serve_connection(accepted: Accepted) {
    let Accepted {
        stream,
        peer,
        local_addr,
        endpoint,
        builder,
        settings,
        connection,
        registry,
        mut phase,
        _permit,
    } = accepted;
    let _registered = Registered(registry, connection.id);
    let service = {
        let connection = connection.clone();
        let local_addr = LocalAddr(local_addr.into());
        let remote_addr = RemoteAddr(peer.into());
        hyper::service::service_fn(move |request: http::Request<Incoming>| {
            connection.request_started();
            let in_flight = InFlight(connection.clone());
            let endpoint = endpoint.clone();
            let mut request = poem::Request::from((
                request,
                local_addr.clone(),
                remote_addr.clone(),
                Scheme::HTTP,
            ));
            let body: BoxBody<Bytes, io::Error> = request.take_body().into();
            request.set_body(poem::Body::from(BoxBody::new(TimedBody {
                inner: body,
                timeout: settings.body_read_timeout,
                sleep: None,
            })));
            async move {
                let response: http::Response<BoxBody<Bytes, io::Error>> =
                    endpoint.get_response(request).await.into();
                Ok::<_, Infallible>(response.map(|body| AnswerBody {
                    inner: body,
                    _in_flight: in_flight,
                }))
            }
        })
    };
    let io = TokioIo::new(Tracked {
        inner: stream,
        connection: connection.clone(),
    });
    let serving = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(serving);
    if *phase.borrow() != Phase::Serving {
        return;
    }
    // The watchdog wakes at least every `tick`, the shortest timeout, and
    // then sleeps until the deadline as things stand, or the next tick. A
    // deadline is always one timeout or more after the event that set it,
    // so a wake between the event and the deadline sees it in time: the
    // socket and the requests need not wake the watchdog (a wake per request
    // cost about a tenth of the HTTP ceiling).
    let tick = settings
        .header_read_timeout
        .min(settings.keep_alive_idle)
        .min(settings.send_timeout);
    let sleep = tokio::time::sleep(tick);
    tokio::pin!(sleep);
    loop {
        let now = Instant::now();
        let next = connection
            .deadline(&settings)
            .map_or(now + tick, |(at, _)| at.min(now + tick));
        sleep.as_mut().reset(next);
        tokio::select! {
            // The connection first: bytes that arrived are read (and move
            // the deadline) before a deadline is judged, so a busy machine
            // that polls late never closes a connection with a request
            // waiting in its socket.
            biased;
            _ = serving.as_mut() => return,
            _ = sleep.as_mut() => {
                // Activity may have moved the deadline since it was read.
                if let Some((at, why)) = connection.deadline(&settings) {
                    if at <= Instant::now() {
                        tracing::debug!(peer = %peer, reason = ?why, "closing a connection that timed out");
                        return;
                    }
                }
            }
            _ = connection.wake.notified() => {
                if connection.evict.swap(false, Ordering::AcqRel) && connection.is_idle() {
                    tracing::debug!(peer = %peer, "closing an idle connection to make room");
                    return;
                }
            }
            changed = phase.changed() => {
                let phase = changed.map(|()| *phase.borrow()).unwrap_or(Phase::Forced);
                // Nothing in progress is lost by closing an idle connection,
                // even one whose next request head is half in.
                if phase == Phase::Forced || connection.is_idle() {
                    return;
                }
                // hyper finishes what is in progress, then closes.
                serving.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A request handed to the endpoint, until its answer has been produced
/// (or dropped).
struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// An answer's body; the request counts as in progress until hyper has
/// taken all of it.
struct AnswerBody {
    inner: BoxBody<Bytes, io::Error>,
    _in_flight: InFlight,
}

impl HttpBody for AnswerBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that fails when the client sends nothing for `timeout`
/// while the service waits for it.
struct TimedBody {
    inner: BoxBody<Bytes, io::Error>,
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            self.sleep = None;
            return Poll::Ready(frame);
        }
        let timeout = self.timeout;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client sent no byte of the request body for {} s",
                    timeout.as_secs_f64()
                ),
            )))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling the connection's clock what moves through it.
struct Tracked {
    inner: TcpStream,
    connection: Arc<Connection>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.connection.write_progress(polled.is_ready());
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.connection.write_progress(polled.is_ready());
        polled
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_back_off_up_to_a_second() {
        let mut backoff = Backoff::default();
        let pauses: Vec<_> = (0..12).map(|_| backoff.next()).collect();
        assert_eq!(pauses[0], Duration::from_millis(5));
        assert_eq!(pauses[1], Duration::from_millis(10));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(pauses[11], Duration::from_secs(1));
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(5));
    }

    #[test]
    fn a_capped_log_holds_back_lines_within_its_period() {
        let mut log = RateLimitedLog::default();
        assert_eq!(log.allow(), Some(0));
        assert_eq!(log.allow(), None);
        assert_eq!(log.allow(), None);
        assert_eq!(log.suppressed, 2);
    }

    #[test]
    fn the_cap_is_never_zero() {
        assert_eq!(max_connections(Some(0)), 1);
        assert_eq!(max_connections(Some(500)), 500);
        let auto = max_connections(None);
        assert!((1..=DEFAULT_MAX_CONNECTIONS).contains(&auto));
    }

    #[test]
    fn out_of_files_is_told_apart() {
        assert!(is_out_of_files(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(is_out_of_files(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert!(!is_out_of_files(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
        assert!(is_per_connection(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}
