//! FTP control channel: a "220" banner mentioning FTP (or on port 21) followed by client
//! commands (USER, AUTH, FEAT, SYST, …). Once decided, the control connection is followed
//! for the data connections it announces (PASV "227" and EPSV "229" replies, PORT and EPRT
//! commands), which [`CrossFlow`](super::CrossFlow) then labels `FTP_DATA`.

use super::util::{find, first_line, starts_with_ci};
use super::{DpiInput, DpiState, Verdict};
use std::net::IpAddr;

/// `DpiState::text` bit: a "220 " greeting was seen from the server.
pub(crate) const SAW_220: u8 = 1;

const COMMANDS: &[&[u8]] = &[
    b"USER ",
    b"AUTH TLS",
    b"AUTH SSL",
    b"FEAT",
    b"SYST",
    b"OPTS ",
];

/// True when the first line is an FTP/SMTP style "220" greeting.
pub(crate) fn is_220(b: &[u8]) -> bool {
    b.starts_with(b"220 ") || b.starts_with(b"220-")
}

/// Probe: greeting and first client command.
pub(crate) fn probe(p: &DpiInput<'_>, st: &mut DpiState) -> Verdict {
    if !p.is_tcp() {
        return Verdict::NotForUs;
    }
    let b = p.payload;
    if !p.c2s() && is_220(b) {
        st.text |= SAW_220;
        let line = first_line(b, 256).to_ascii_uppercase();
        if p.has_port(21) || find(&line, b"FTP").is_some() {
            return Verdict::Certain("FTP_CONTROL", true);
        }
        return Verdict::Unsure;
    }
    if p.c2s()
        && COMMANDS.iter().any(|c| starts_with_ci(b, c))
        && (st.text & SAW_220 != 0 || p.has_port(21))
    {
        track(p, st);
        return Verdict::Certain("FTP_CONTROL", true);
    }
    if st.total_pkts() >= 4 {
        Verdict::NotForUs
    } else {
        Verdict::Unsure
    }
}

/// Tracking: data connections announced on the control connection.
pub(crate) fn track(p: &DpiInput<'_>, st: &mut DpiState) -> bool {
    for line in p.payload.split(|&c| c == b'\n') {
        if let Some(e) = data_endpoint(line, p.c2s()) {
            let l = st.learnt_mut();
            if l.expect.len() < 8 {
                l.expect.push(e);
            }
        }
    }
    true
}

/// The responder of a data connection announced by one control line: PASV/EPSV replies
/// (server → client) name the server's side, PORT/EPRT commands (client → server) the
/// client's. `None` address = the control connection's server (EPSV).
fn data_endpoint(line: &[u8], c2s: bool) -> Option<(Option<IpAddr>, u16)> {
    let text = std::str::from_utf8(line.get(..line.len().min(200))?)
        .ok()?
        .trim();
    if !c2s && text.starts_with("227") {
        let inner = text.get(text.find('(')? + 1..)?;
        let inner = &inner[..inner.find(')')?];
        return comma_endpoint(inner).map(|(ip, port)| (Some(ip), port));
    }
    if !c2s && text.starts_with("229") {
        let inner = text.get(text.find('(')? + 1..)?;
        let mut parts = inner.split('|');
        let (_, _, _, port) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        return Some((None, port.parse().ok()?));
    }
    let upper = text.get(..5)?.to_ascii_uppercase();
    if c2s && upper == "PORT " {
        return comma_endpoint(text.get(5..)?.trim()).map(|(ip, port)| (Some(ip), port));
    }
    if c2s && upper == "EPRT " {
        let arg = text.get(5..)?.trim();
        let delim = arg.chars().next()?;
        let mut parts = arg.split(delim).skip(1);
        let (_, ip, port) = (parts.next()?, parts.next()?, parts.next()?);
        return Some((Some(ip.parse().ok()?), port.parse().ok()?));
    }
    None
}

/// `h1,h2,h3,h4,p1,p2` → address and port.
fn comma_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let mut v = [0u8; 6];
    let mut parts = s.split(',');
    for x in &mut v {
        *x = parts.next()?.trim().parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some((
        IpAddr::from([v[0], v[1], v[2], v[3]]),
        u16::from_be_bytes([v[4], v[5]]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_data_connections() {
        let ip4: IpAddr = "192.0.2.7".parse().unwrap();
        let ip6: IpAddr = "2001:db8::9".parse().unwrap();
        assert_eq!(
            data_endpoint(b"227 Entering Passive Mode (192,0,2,7,195,80).\r", false),
            Some((Some(ip4), 50000))
        );
        assert_eq!(
            data_endpoint(b"229 Entering Extended Passive Mode (|||57086|)\r", false),
            Some((None, 57086))
        );
        assert_eq!(
            data_endpoint(b"PORT 192,0,2,7,4,1\r", true),
            Some((Some(ip4), 1025))
        );
        assert_eq!(
            data_endpoint(b"EPRT |2|2001:db8::9|49189|\r", true),
            Some((Some(ip6), 49189))
        );
        // wrong direction, malformed and hostile lines
        assert_eq!(data_endpoint(b"PORT 192,0,2,7,4,1", false), None);
        for bad in [
            &b"227 (1,2,3)"[..],
            b"227 (1,2,3,4,5,6,7)",
            b"227 (300,2,3,4,5,6)",
            b"229 (|||99999|)",
            b"229 (",
            b"EPRT |",
            b"EPRT |2|nonsense|1|",
            b"PORT",
            b"\xff\xfe",
        ] {
            assert_eq!(data_endpoint(bad, true), None);
            assert_eq!(data_endpoint(bad, false), None);
        }
    }
}
