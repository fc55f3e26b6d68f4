//! Zero-copy decoding of captured frames: link layers, VLAN/MPLS/PPPoE, IPv4/IPv6 (with
//! extension headers and fragments), TCP/UDP/ICMP, and tunnels (GRE, IP-in-IP, VXLAN,
//! Geneve, GTP-U, Teredo, AYIYA).
//!
//! [`Decoder::decode`] turns one frame into up to [`MAX_LAYERS`] transport-level views
//! ([`Transport`]), outermost first. A UDP tunnel yields its carrier flow *and* the inner
//! flow (as Zeek logs both); GRE and IP-in-IP yield only the inner flow (the carrier has no
//! ports). Nothing here allocates: every view borrows the frame.
//!
//! A frame that can't be decoded is a counted outcome ([`Skip`]), never an error value.

mod ethernet;
mod gre;
mod ip;
mod link;
mod mpls;
mod ppp;
mod transport;
mod tunnel;

pub use link::LinkType;
pub use transport::{addr, tcp_flags, Fragment, TcpInfo, Transport, TunnelKind};

/// Most transport layers one frame can yield (outer tunnel carriers + the innermost flow).
pub const MAX_LAYERS: usize = 4;
/// Deepest nesting of encapsulations followed before a frame is skipped.
const MAX_DEPTH: u8 = 8;

/// Why a frame was skipped (or, for [`Skip::NonIp`], ignored). Counted per reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Skip {
    /// Not an IP frame (ARP, LLDP, STP, PPP control, …): ignored, not an error.
    NonIp,
    /// The capture's link type is not supported.
    UnsupportedLinkType,
    /// Frame shorter than its link-layer header.
    TruncatedLink,
    /// Frame ends inside a VLAN tag.
    TruncatedVlan,
    /// Frame ends inside an MPLS label stack, or the stack is implausibly deep.
    TruncatedMpls,
    /// Frame ends inside a PPPoE/PPP header.
    TruncatedPppoe,
    /// Frame ends inside the IPv4 header.
    TruncatedIpv4,
    /// IPv4 header invalid (version, header length, total length).
    BadIpv4,
    /// Frame ends inside the IPv6 header.
    TruncatedIpv6,
    /// IPv6 extension header chain truncated or malformed.
    BadIpv6Extension,
    /// GRE header truncated or with an unsupported version.
    BadGre,
    /// Encapsulations nested deeper than the decoder follows.
    TooDeep,
    /// A non-first IPv4/IPv6 fragment whose first fragment was never seen.
    OrphanFragment,
    /// IPv4 total length (or IPv6 payload length) larger than the frame was on the wire:
    /// a malformed header, as nDPI and tshark treat it. (A snaplen cut, where only the
    /// captured part is short, is not this.)
    IpLengthPastWire,
}

impl Skip {
    /// Every reason, for reporting in a fixed order.
    pub const ALL: [Skip; 14] = [
        Skip::NonIp,
        Skip::UnsupportedLinkType,
        Skip::TruncatedLink,
        Skip::TruncatedVlan,
        Skip::TruncatedMpls,
        Skip::TruncatedPppoe,
        Skip::TruncatedIpv4,
        Skip::BadIpv4,
        Skip::TruncatedIpv6,
        Skip::BadIpv6Extension,
        Skip::BadGre,
        Skip::TooDeep,
        Skip::OrphanFragment,
        Skip::IpLengthPastWire,
    ];

    /// Human-readable reason, used in summaries (`12 packets skipped: 10 truncated IPv4`).
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::NonIp => "non-IP",
            Skip::UnsupportedLinkType => "unsupported link type",
            Skip::TruncatedLink => "truncated link header",
            Skip::TruncatedVlan => "truncated VLAN",
            Skip::TruncatedMpls => "bad MPLS",
            Skip::TruncatedPppoe => "truncated PPPoE/PPP",
            Skip::TruncatedIpv4 => "truncated IPv4",
            Skip::BadIpv4 => "bad IPv4 header",
            Skip::TruncatedIpv6 => "truncated IPv6",
            Skip::BadIpv6Extension => "bad IPv6 extension header",
            Skip::BadGre => "bad GRE",
            Skip::TooDeep => "too deeply nested",
            Skip::OrphanFragment => "orphan fragment",
            Skip::IpLengthPastWire => "IP length past wire length",
        }
    }

    /// Index into per-reason counter arrays.
    pub fn index(self) -> usize {
        Skip::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// The transport layers decoded from one frame, outermost first.
#[derive(Debug, Default)]
pub struct Decoded<'a> {
    layers: [Transport<'a>; MAX_LAYERS],
    len: usize,
    /// Outermost 802.1Q/802.1ad VLAN id of the frame (0 when untagged).
    pub vlan: u16,
}

impl<'a> Decoded<'a> {
    /// The decoded layers, outermost first; the last one is the innermost flow.
    pub fn layers(&self) -> &[Transport<'a>] {
        &self.layers[..self.len]
    }

    /// Mutable access to the decoded layers (the flow table fills in fragment ports).
    pub fn layers_mut(&mut self) -> &mut [Transport<'a>] {
        &mut self.layers[..self.len]
    }

    fn clear(&mut self) {
        self.len = 0;
        self.vlan = 0;
    }

    /// Appends a layer; when full, the innermost slot is overwritten (deepest wins).
    fn push(&mut self, t: Transport<'a>) {
        if self.len < MAX_LAYERS {
            self.layers[self.len] = t;
            self.len += 1;
        } else {
            self.layers[MAX_LAYERS - 1] = t;
        }
    }
}

/// Stateless frame decoder. Holds only configuration (e.g. which UDP ports are tunnels).
#[derive(Clone, Debug)]
pub struct Decoder {
    /// Decapsulate UDP tunnels (GTP-U, VXLAN, Geneve, Teredo, AYIYA).
    pub udp_tunnels: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { udp_tunnels: true }
    }
}

/// Tunnel context carried from an outer layer to the layers it encapsulates.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ctx {
    pub depth: u8,
    pub tunnel: TunnelKind,
    pub tunnel_id: u32,
    pub teid: u32,
    /// Bytes the enclosing packet had on the wire past the end of the slice being decoded
    /// (cut by the capture's snaplen): an IP header may claim that much more than the
    /// slice holds, and no more.
    pub uncaptured: u32,
}

impl Ctx {
    pub(crate) fn deeper(self) -> Result<Ctx, Skip> {
        if self.depth >= MAX_DEPTH {
            return Err(Skip::TooDeep);
        }
        Ok(Ctx {
            depth: self.depth + 1,
            ..self
        })
    }

    pub(crate) fn inside(self, tunnel: TunnelKind, tunnel_id: u32) -> Result<Ctx, Skip> {
        let mut c = self.deeper()?;
        c.tunnel = tunnel;
        c.tunnel_id = tunnel_id;
        c.teid = 0;
        Ok(c)
    }
}

impl Decoder {
    /// Decodes one frame of the given link type, captured whole, into `out`: see
    /// [`Decoder::decode_wire`].
    pub fn decode<'a>(
        &self,
        linktype: LinkType,
        frame: &'a [u8],
        out: &mut Decoded<'a>,
    ) -> Result<(), Skip> {
        let wire_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.decode_wire(linktype, frame, wire_len, out)
    }

    /// Decodes one frame of the given link type into `out`; `frame` holds the captured
    /// bytes of a frame that was `wire_len` bytes long on the wire (more when the capture's
    /// snaplen cut it). An IP header claiming more than the wire length is malformed
    /// ([`Skip::IpLengthPastWire`]); one claiming more than was captured but no more than
    /// the wire length counts with its header's length.
    ///
    /// On `Ok`, `out.layers()` holds at least one layer. On `Err`, the frame is to be
    /// skipped for the given reason, unless some outer layer was already decoded (a UDP
    /// tunnel whose payload is garbage still yields its carrier flow): then `Ok` is returned.
    pub fn decode_wire<'a>(
        &self,
        linktype: LinkType,
        frame: &'a [u8],
        wire_len: u32,
        out: &mut Decoded<'a>,
    ) -> Result<(), Skip> {
        out.clear();
        let captured = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let ctx = Ctx {
            uncaptured: wire_len.saturating_sub(captured),
            ..Ctx::default()
        };
        let r = link::decode_link(self, linktype, frame, ctx, out);
        match r {
            Ok(()) if out.len > 0 => Ok(()),
            Ok(()) => Err(Skip::NonIp),
            Err(_) if out.len > 0 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Reads a big-endian u16 at `off`, if in bounds.
#[inline]
pub(crate) fn be16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Reads a big-endian u32 at `off`, if in bounds.
#[inline]
pub(crate) fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

#[cfg(test)]
mod tests;
