//! HTTP/1.x over TCP: request line and headers (httparse; Host, User-Agent), response
//! status, request and first-response-byte timestamps. `CONNECT` requests are reported as
//! "HTTP_Connect", requests with an absolute URI (to a proxy) as "HTTP_Proxy".

use super::util::text;
use super::{DpiInput, DpiState, Verdict};

const MAX_HDR: usize = 4096;
const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"PATCH ",
    b"TRACE ",
    b"PROPFIND ",
];

/// Per-flow HTTP state (boxed; only for HTTP flows).
#[derive(Debug, Default)]
pub(crate) struct HttpState {
    /// Request head being reassembled (request split over segments).
    req: Vec<u8>,
    req_done: bool,
    resp_done: bool,
}

/// True when `b` starts like an HTTP request.
pub(crate) fn is_request_start(b: &[u8]) -> bool {
    METHODS.iter().any(|m| b.starts_with(m))
}

fn is_response_start(b: &[u8]) -> bool {
    b.starts_with(b"HTTP/1.")
        && b.len() >= 12
        && b[8] == b' '
        && b[9..12].iter().all(u8::is_ascii_digit)
}

/// The Host header value without a trailing ":port" (IPv6 literals keep their brackets).
fn host_without_port(v: &[u8]) -> Option<Box<str>> {
    let v = v.trim_ascii();
    let cut = match v.iter().rposition(|&c| c == b':') {
        Some(i) if v[i + 1..].iter().all(u8::is_ascii_digit) && !v[..i].ends_with(b":") => {
            if v.first() == Some(&b'[') && v[..i].last() != Some(&b']') {
                v.len()
            } else {
                i
            }
        }
        _ => v.len(),
    };
    text(&v[..cut], 255)
}

impl HttpState {
    /// Parses the (partial) request head; true when complete or hopeless.
    fn parse_request(&mut self, st_res: &mut super::DpiResult) -> bool {
        let mut headers = [httparse::EMPTY_HEADER; 48];
        let mut req = httparse::Request::new(&mut headers);
        let status = req.parse(&self.req);
        let complete = match status {
            Ok(httparse::Status::Complete(_)) => true,
            Ok(httparse::Status::Partial) => self.req.len() >= MAX_HDR,
            Err(_) => true,
        };
        if st_res.http_method.is_none() {
            st_res.http_method = req.method.and_then(|m| text(m.as_bytes(), 16));
        }
        for h in req.headers.iter() {
            if h.name.is_empty() {
                break;
            }
            if h.name.eq_ignore_ascii_case("host") && st_res.host.is_none() {
                st_res.host = host_without_port(h.value);
            } else if h.name.eq_ignore_ascii_case("user-agent") && st_res.user_agent.is_none() {
                st_res.user_agent = text(h.value, 256);
            }
        }
        // httparse only fills headers on a complete parse; fall back to a line scan.
        if !complete || req.headers.first().is_none_or(|h| h.name.is_empty()) {
            if st_res.host.is_none() {
                st_res.host =
                    super::util::header_value(&self.req, b"host").and_then(host_without_port);
            }
            if st_res.user_agent.is_none() {
                st_res.user_agent =
                    super::util::header_value(&self.req, b"user-agent").and_then(|v| text(v, 256));
            }
        }
        complete
    }

    fn feed(&mut self, p: &DpiInput<'_>, res: &mut super::DpiResult) {
        if p.c2s() {
            if !self.req_done && (!self.req.is_empty() || is_request_start(p.payload)) {
                if self.req.is_empty() {
                    res.http_request_ts = Some(p.ts_ns);
                }
                let room = MAX_HDR.saturating_sub(self.req.len());
                self.req
                    .extend_from_slice(&p.payload[..p.payload.len().min(room)]);
                if self.parse_request(res) {
                    self.req_done = true;
                    self.req = Vec::new();
                }
            }
        } else if !self.resp_done && is_response_start(p.payload) {
            self.resp_done = true;
            res.http_response_ts = Some(p.ts_ns);
            let code = &p.payload[9..12];
            res.http_status = Some(code.iter().fold(0u16, |a, &d| a * 10 + u16::from(d - b'0')));
        }
    }
}

/// Probe: a request line from the client or a status line from the server.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_tcp() {
        return Verdict::NotForUs;
    }
    let b = p.payload;
    let name = if p.c2s() && is_request_start(b) {
        let target = b.split(|&c| c == b' ').nth(1).unwrap_or(&[]);
        if b.starts_with(b"CONNECT ") {
            "HTTP_Connect"
        } else if super::util::starts_with_ci(target, b"http://") {
            "HTTP_Proxy"
        } else {
            "HTTP"
        }
    } else if is_response_start(b) {
        "HTTP"
    } else {
        return if st.total_pkts() >= 6 {
            Verdict::NotForUs
        } else {
            Verdict::Unsure
        };
    };
    let mut h = Box::<HttpState>::default();
    h.feed(p, &mut st.result);
    let more = !h.resp_done;
    st.http = Some(h);
    Verdict::Certain(name, more)
}

/// Tracking: rest of the request head, response status.
pub(crate) fn track(p: &DpiInput<'_>, st: &mut DpiState) -> bool {
    let Some(mut h) = st.http.take() else {
        return false;
    };
    h.feed(p, &mut st.result);
    // CONNECT tunnels carry TLS afterwards: nothing more to learn after the response.
    let more = !h.resp_done;
    st.http = Some(h);
    more
}
