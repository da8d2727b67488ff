//! Talking to the server under test: REST login and conversations, WebSocket sessions over
//! chosen source addresses, and the few frames the scenarios use.

use anyhow::{bail, Context};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TsStream>;

/// A TCP stream that reads with `recvmsg` and keeps the kernel's receive time of the last
/// segment read (`SO_TIMESTAMP`): the moment the bytes reached this host, before the load
/// generator got round to reading them. On loopback that is when the server's send was
/// delivered, so fan-out latency can be told apart from the generator's own read delay.
pub struct TsStream {
    inner: tokio::net::TcpStream,
    /// Shared, so that the reading half of a split session can look at it.
    clock: std::sync::Arc<RxClock>,
}

/// What the last read of a `TsStream` saw.
#[derive(Default)]
pub struct RxClock {
    /// Microseconds since the Unix epoch of the last segment read; 0 until one carries a time.
    pub last_rx_us: std::sync::atomic::AtomicU64,
    /// Reads that returned data so far. Two frames seen with the same count came in one read,
    /// and then the earlier one carries the later segment's time (the kernel merges queued
    /// segments and keeps the newest time), so its kernel time is too late.
    pub reads: std::sync::atomic::AtomicU64,
}

impl TsStream {
    pub fn new(inner: tokio::net::TcpStream) -> std::io::Result<TsStream> {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option of the right size.
        let rc = unsafe {
            libc::setsockopt(
                inner.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMP,
                &on as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(TsStream { inner, clock: Default::default() })
    }

    /// Where the kernel's receive time of the last segment read, and the count of reads, are kept.
    pub fn rx_clock(&self) -> std::sync::Arc<RxClock> {
        self.clock.clone()
    }

    fn recv(&self, buf: &mut [u8]) -> std::io::Result<(usize, Option<u64>)> {
        use std::os::fd::AsRawFd;
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
        // Room for one SCM_TIMESTAMP (a timeval) and then some.
        let mut control = [0u64; 16];
        // SAFETY: zeroed msghdr is valid; the pointers below outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: a valid socket and a msghdr whose buffers are live.
        let n = unsafe { libc::recvmsg(self.inner.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut ts = None;
        // SAFETY: walking the control buffer the kernel filled, with the libc macros.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMP {
                    let tv = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timeval);
                    ts = Some(tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64);
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok((n as usize, ts))
    }
}

impl tokio::io::AsyncRead for TsStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let me = self.get_mut();
        loop {
            std::task::ready!(me.inner.poll_read_ready(cx))?;
            let dst = buf.initialize_unfilled();
            match me.inner.try_io(tokio::io::Interest::READABLE, || me.recv(dst)) {
                Ok((n, ts)) => {
                    if let Some(ts) = ts {
                        me.clock.last_rx_us.store(ts, std::sync::atomic::Ordering::Relaxed);
                    }
                    if n > 0 {
                        me.clock.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    buf.advance(n);
                    return std::task::Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return std::task::Poll::Ready(Err(e)),
            }
        }
    }
}

impl tokio::io::AsyncWrite for TsStream {
    fn poll_write(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Codec {
    Json,
    Msgpack,
}

/// Where the server is and how to reach it.
pub struct Target {
    pub addr: SocketAddr,
    pub codec: Codec,
    /// Source addresses to spread sessions over (127.0.0.2, 127.0.0.3, ...): each gives its own
    /// 64k ephemeral ports.
    pub sources: Vec<Ipv4Addr>,
    next_source: AtomicUsize,
    pub http: reqwest::Client,
}

impl Target {
    /// `offset` skips that many source addresses, so that several generator processes do not
    /// share one address's ports.
    pub fn new(addr: SocketAddr, codec: Codec, sources: usize, offset: usize) -> Target {
        // 127.0.0.2, 127.0.0.3, ... 127.0.0.254, 127.0.1.1, ...
        let sources = (offset..offset + sources.max(1))
            .map(|i| {
                let k = i + 1;
                Ipv4Addr::new(127, 0, (k / 254) as u8, (k % 254 + 1) as u8)
            })
            .collect();
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("http client");
        Target { addr, codec, sources, next_source: AtomicUsize::new(0), http }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn login(&self, code: &str) -> anyhow::Result<(String, String)> {
        for attempt in 0..20 {
            let resp = self
                .http
                .post(format!("{}/api/v1/auth/login", self.base()))
                .json(&json!({ "code": code }))
                .send()
                .await
                .context("login request")?;
            if resp.status() == 429 && attempt < 19 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt.min(5))).await;
                continue;
            }
            if !resp.status().is_success() {
                bail!("login {code}: HTTP {}", resp.status());
            }
            let v: Value = resp.json().await?;
            let token = v["token"].as_str().context("token")?.to_owned();
            let id = v["user"]["id"].as_str().context("user id")?.to_owned();
            // The scenarios put strangers in rooms and watch their presence: open both.
            self.patch("/api/v1/me/settings", &token, json!({ "group_add_from": "everyone", "presence_to": "everyone" }))
                .await
                .context("opening the settings")?;
            return Ok((token, id));
        }
        bail!("login {code}: rate limited")
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> anyhow::Result<Value> {
        for attempt in 0..20 {
            let resp = self.http.patch(format!("{}{path}", self.base())).bearer_auth(token).json(&body).send().await?;
            if resp.status() == 429 && attempt < 19 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt.min(5))).await;
                continue;
            }
            if !resp.status().is_success() {
                bail!("PATCH {path}: HTTP {}", resp.status());
            }
            return Ok(resp.json().await?);
        }
        bail!("PATCH {path}: rate limited")
    }

    /// A POST that answers its status and body whatever they are (retrying a 429).
    pub async fn post_status(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        for attempt in 0..20 {
            let resp = self.http.post(format!("{}{path}", self.base())).bearer_auth(token).json(body).send().await?;
            let status = resp.status().as_u16();
            if status == 429 && attempt < 19 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt.min(5))).await;
                continue;
            }
            return Ok((status, resp.json().await.unwrap_or(Value::Null)));
        }
        bail!("POST {path}: rate limited")
    }

    pub async fn get_json(&self, path: &str, token: &str) -> anyhow::Result<Value> {
        let resp = self.http.get(format!("{}{path}", self.base())).bearer_auth(token).send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("GET {path}: HTTP {status}: {v}");
        }
        Ok(v)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> anyhow::Result<Value> {
        let resp = self.http.post(format!("{}{path}", self.base())).bearer_auth(token).json(&body).send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path}: HTTP {status}: {v}");
        }
        Ok(v)
    }

    pub async fn direct(&self, token: &str, other: &str) -> anyhow::Result<String> {
        let v = self.post("/api/v1/conversations", token, json!({"kind":"direct","members":[other]})).await?;
        Ok(v["id"].as_str().context("conversation id")?.to_owned())
    }

    /// A group of the owner and `members`, created with the first 400 and grown by the members
    /// endpoint in chunks (request bodies are limited).
    pub async fn group(&self, token: &str, title: &str, members: &[String]) -> anyhow::Result<String> {
        let (first, rest) = members.split_at(members.len().min(400));
        let v = self.post("/api/v1/conversations", token, json!({"kind":"group","title":title,"members":first})).await?;
        let id = v["id"].as_str().context("conversation id")?.to_owned();
        for chunk in rest.chunks(1000) {
            self.post(&format!("/api/v1/conversations/{id}/members"), token, json!({ "members": chunk })).await?;
        }
        Ok(id)
    }

    /// Opens a session from the next source address and reads its hello.
    pub async fn connect(&self, token: &str) -> anyhow::Result<Ws> {
        let i = self.next_source.fetch_add(1, Ordering::Relaxed);
        let src = self.sources[i % self.sources.len()];
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(src.into(), 0)).with_context(|| format!("bind {src}"))?;
        let stream = socket.connect(self.addr).await.context("tcp connect")?;
        stream.set_nodelay(true)?;
        let stream = TsStream::new(stream).context("SO_TIMESTAMP")?;
        let mut req = format!("ws://{}/ws", self.addr).into_client_request()?;
        let proto = match self.codec {
            Codec::Json => "jbk.v1.json",
            Codec::Msgpack => "jbk.v1.msgpack",
        };
        // The token as a second offered protocol, as the app sends it, and (the same token) as
        // a bearer header, which the Node peer of bench/ reads.
        req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(&format!("{proto}, jbk.auth.{token}"))?);
        req.headers_mut().insert("Authorization", HeaderValue::from_str(&format!("Bearer {token}"))?);
        // tungstenite zero-fills its whole read buffer before every read (128 KiB by default):
        // with thousands of sessions that memset, not the server, would set the latency.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(req, stream, Some(config)).await.context("websocket upgrade")?;
        match ws.next().await {
            Some(Ok(m)) => {
                let f = decode(self.codec, &m).context("hello")?;
                if f.ty != "hello" {
                    bail!("first frame was {}, not hello", f.ty);
                }
            }
            other => bail!("no hello: {other:?}"),
        }
        Ok(ws)
    }

    /// Any frame, in the session's codec.
    pub fn frame(&self, v: &Value) -> Message {
        match self.codec {
            Codec::Json => Message::Text(v.to_string().into()),
            Codec::Msgpack => Message::Binary(rmp_serde::to_vec_named(v).expect("encode").into()),
        }
    }

    /// A `send` frame. `text` must need no JSON escaping (the scenarios use ASCII filler).
    pub fn send_frame(&self, id: u64, conv: &str, cmid: &str, text: &str) -> Message {
        match self.codec {
            Codec::Json => Message::Text(
                format!(r#"{{"type":"send","id":{id},"conv":"{conv}","cmid":"{cmid}","body":{{"kind":"text","text":"{text}"}}}}"#)
                    .into(),
            ),
            Codec::Msgpack => {
                let v = json!({"type":"send","id":id,"conv":conv,"cmid":cmid,"body":{"kind":"text","text":text}});
                Message::Binary(rmp_serde::to_vec_named(&v).expect("encode").into())
            }
        }
    }
}

/// The fields of a server frame the scenarios look at; the body is skipped.
#[derive(Debug, Deserialize)]
pub struct Frame {
    #[serde(rename = "type")]
    pub ty: String,
    pub seq: Option<u64>,
    pub cmid: Option<String>,
    /// The request id an answer echoes (the scenarios send numbers).
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    pub matched: Option<bool>,
    pub cancelled: Option<bool>,
    #[serde(rename = "match")]
    pub match_id: Option<String>,
    pub peer: Option<String>,
    /// An `order_alert`'s id and order.
    pub alert: Option<String>,
    pub order: Option<FrameOrder>,
}

/// The order of an `order_alert`, as far as the scenarios look.
#[derive(Debug, Deserialize)]
pub struct FrameOrder {
    pub id: String,
    pub merchant: String,
}

impl Frame {
    pub fn req_id(&self) -> Option<u64> {
        self.id.as_ref().and_then(|v| v.as_u64())
    }
}

/// Decodes a data frame; `None` for ping, pong and close.
pub fn decode(codec: Codec, m: &Message) -> Option<Frame> {
    match (codec, m) {
        (_, Message::Text(t)) => serde_json::from_str(t.as_str()).ok(),
        (Codec::Msgpack, Message::Binary(b)) => rmp_serde::from_slice(b).ok(),
        _ => None,
    }
}

/// The send time carried in a cmid `<prefix>.<n>.<micros since start>`.
pub fn cmid(prefix: &str, n: u64, micros: u64) -> String {
    format!("{prefix}.{n}.{micros}")
}

pub fn cmid_micros(cmid: &str) -> Option<u64> {
    cmid.rsplit('.').next()?.parse().ok()
}
