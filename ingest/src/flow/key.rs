//! The bidirectional flow key: both endpoints in a canonical order, so the two directions
//! of a connection find the same entry.

use crate::decode::{Transport, TunnelKind};

/// Canonical flow key. Endpoint `a` is the smaller (address, port) of the two.
#[derive(Clone, Copy, Debug, Eq)]
#[repr(C)]
pub struct FlowKey {
    /// Smaller endpoint's address (IPv4 in the first 4 bytes).
    pub a: [u8; 16],
    /// Larger endpoint's address.
    pub b: [u8; 16],
    /// Port of `a` (0 for port-less protocols).
    pub a_port: u16,
    /// Port of `b`.
    pub b_port: u16,
    /// Outermost VLAN id of the frames (0 when untagged).
    pub vlan: u16,
    /// IP protocol.
    pub l4: u8,
    /// IP version (4 or 6) in the low nibble, tunnel kind in the high nibble.
    pub ver_tunnel: u8,
    /// Tunnel id that names a virtual network (VNI, GRE key); 0 otherwise.
    pub tunnel_id: u32,
}

/// Direction of a packet relative to its key: `AtoB` when sent by endpoint `a`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDir {
    /// Sent by the key's `a` endpoint.
    AtoB = 0,
    /// Sent by the key's `b` endpoint.
    BtoA = 1,
}

impl PartialEq for FlowKey {
    /// Word-wise comparison (the derived one calls `memcmp` for the address arrays).
    #[inline]
    fn eq(&self, o: &Self) -> bool {
        u128::from_ne_bytes(self.a) == u128::from_ne_bytes(o.a)
            && u128::from_ne_bytes(self.b) == u128::from_ne_bytes(o.b)
            && self.a_port == o.a_port
            && self.b_port == o.b_port
            && self.vlan == o.vlan
            && self.l4 == o.l4
            && self.ver_tunnel == o.ver_tunnel
            && self.tunnel_id == o.tunnel_id
    }
}

impl std::hash::Hash for FlowKey {
    /// Hashes the same fields `eq` compares, as words.
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u128(u128::from_ne_bytes(self.a));
        h.write_u128(u128::from_ne_bytes(self.b));
        h.write_u64(
            (self.a_port as u64) << 48
                | (self.b_port as u64) << 32
                | (self.vlan as u64) << 16
                | (self.l4 as u64) << 8
                | self.ver_tunnel as u64,
        );
        h.write_u32(self.tunnel_id);
    }
}

impl FlowKey {
    /// Builds the canonical key of a decoded packet and the packet's direction.
    #[inline]
    pub fn of(t: &Transport<'_>, vlan: u16) -> (FlowKey, KeyDir) {
        let src_first = (t.src, t.src_port) <= (t.dst, t.dst_port);
        let (a, a_port, b, b_port, dir) = if src_first {
            (t.src, t.src_port, t.dst, t.dst_port, KeyDir::AtoB)
        } else {
            (t.dst, t.dst_port, t.src, t.src_port, KeyDir::BtoA)
        };
        let key = FlowKey {
            a,
            b,
            a_port,
            b_port,
            vlan,
            l4: t.proto,
            ver_tunnel: (t.ip_version & 0x0f) | ((t.tunnel as u8) << 4),
            tunnel_id: t.tunnel_id,
        };
        (key, dir)
    }

    /// IP version of the flow's addresses.
    pub fn ip_version(&self) -> u8 {
        self.ver_tunnel & 0x0f
    }

    /// Tunnel the flow was carried in.
    pub fn tunnel(&self) -> TunnelKind {
        TunnelKind::from_u8(self.ver_tunnel >> 4)
    }
}
