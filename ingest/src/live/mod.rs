//! Live capture on Linux network interfaces (AF_PACKET), for a probe on a mirror (SPAN) port.
//!
//! Two back ends read the same sockets, chosen by [`Backend`]:
//! * [`Backend::Tpacket`] (default): a `TPACKET_V3` memory-mapped receive ring. The kernel
//!   fills blocks of packets with their timestamps; the reader walks a block and hands it
//!   back, with no system call per packet. VLAN tags the kernel took off the frame are put
//!   back in.
//! * [`Backend::Pnet`]: pnet's datalink channel (`recvfrom` into a 64 KiB buffer per
//!   packet, one `poll` + one `recvfrom` per packet). Packets are stamped with the wall
//!   clock when read, and VLAN tags stripped by the kernel are lost.
//!
//! Either way a socket is bound to one interface, promiscuous, with a large receive buffer,
//! frames up to 64 KiB (offloaded GRO frames are not cut), an optional classic BPF filter,
//! and — when several workers capture — joined to a `PACKET_FANOUT` group hashing each flow
//! to one worker (the kernel's flow hash is symmetric, so both directions of a flow meet in
//! the same worker). Kernel drops (`PACKET_STATISTICS`) and cemflow's own drops are counted
//! apart, per interface ([`InterfaceCounters`]).
//!
//! [`LiveCapture`] reads one worker's sockets (one per interface). When an interface goes
//! down or disappears, its socket is closed, a warning is logged, and the capture reopens it
//! once a second until it is back (logged too); the other interfaces carry on.

mod bpf;
mod capture;
mod iface;
mod pnet_rx;
mod ring;
mod socket;

pub use bpf::{BpfInstruction, BpfProgram};
pub use capture::{now_ns, LiveCapture, LivePacket};
pub use iface::{interface_info, InterfaceInfo};

use std::time::Duration;

/// How packets are read from the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    /// `TPACKET_V3` memory-mapped ring (kernel timestamps, no system call per packet).
    #[default]
    Tpacket,
    /// pnet's datalink channel (`recvfrom` per packet, wall-clock timestamps).
    Pnet,
}

impl Backend {
    /// The name used on the command line and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Tpacket => "tpacket",
            Backend::Pnet => "pnet",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tpacket" | "tpacket_v3" => Ok(Backend::Tpacket),
            "pnet" => Ok(Backend::Pnet),
            other => Err(format!(
                "unknown capture backend {other:?} (tpacket or pnet)"
            )),
        }
    }
}

/// Largest frame read in full: offloaded (GRO/GSO) frames up to 64 KiB are not cut.
pub const MAX_FRAME: usize = 64 * 1024;

/// How a worker's sockets are opened.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// Reading back end.
    pub backend: Backend,
    /// Size of each socket's buffer in bytes: the `TPACKET_V3` ring, or `SO_RCVBUF` for pnet.
    pub buffer_bytes: usize,
    /// Put the interfaces in promiscuous mode (a mirror port delivers frames for other MACs).
    pub promiscuous: bool,
    /// Classic BPF program attached to every socket (only matching frames are delivered).
    pub filter: Option<BpfProgram>,
    /// `PACKET_FANOUT` group id base when several workers read the same interfaces
    /// (`None`: one worker reads each interface alone). The group of the interface at
    /// position `i` is `base + i` (16 bits); every worker joins the same groups.
    pub fanout: Option<u16>,
    /// Most time a `TPACKET_V3` block is held by the kernel before it is handed over
    /// partly filled (bounds the delay at low rates).
    pub block_timeout: Duration,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            backend: Backend::Tpacket,
            buffer_bytes: 64 << 20,
            promiscuous: true,
            filter: None,
            fanout: None,
            block_timeout: Duration::from_millis(50),
        }
    }
}

/// Counters of one interface in one worker (sum over workers for the interface's total).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceCounters {
    /// Interface name.
    pub interface: String,
    /// Frames handed to cemflow.
    pub packets: u64,
    /// Bytes of those frames as captured.
    pub bytes: u64,
    /// Frames the kernel dropped because the socket's buffer or ring was full
    /// (`PACKET_STATISTICS`).
    pub kernel_drops: u64,
    /// Frames cemflow received but could not use in full: cut by the 64 KiB frame limit or
    /// the ring's snap length (they are still processed with what was captured).
    pub own_drops: u64,
    /// Times the interface went away (down or deleted) and capture had to reopen it.
    pub reconnects: u64,
    /// True while the socket is open and capturing.
    pub up: bool,
}

/// Errors of live capture.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The process may not open packet sockets.
    #[error(
        "capturing on {interface} needs the CAP_NET_RAW capability: run as root, or grant it \
         with `setcap cap_net_raw,cap_net_admin=eip $(which cemflow)` ({source})"
    )]
    Permission {
        /// Interface being opened.
        interface: String,
        /// The system error.
        source: std::io::Error,
    },
    /// No interface with that name.
    #[error("no network interface named {0:?} (see `ip link`)")]
    NoSuchInterface(String),
    /// The interface's link layer is not one cemflow decodes.
    #[error("interface {interface}: unsupported link type (ARPHRD {arphrd})")]
    UnsupportedLink {
        /// Interface.
        interface: String,
        /// Its ARPHRD_* hardware type.
        arphrd: u16,
    },
    /// A system call on a capture socket failed.
    #[error("interface {interface}: {op}: {source}")]
    Io {
        /// Interface.
        interface: String,
        /// What was being done.
        op: &'static str,
        /// The system error.
        source: std::io::Error,
    },
    /// The `--bpf` filter could not be compiled.
    #[error("BPF filter {filter:?}: {reason}")]
    Filter {
        /// The filter expression.
        filter: String,
        /// Why it failed.
        reason: String,
    },
}

impl LiveError {
    pub(crate) fn io(interface: &str, op: &'static str, source: std::io::Error) -> LiveError {
        if matches!(
            source.raw_os_error(),
            Some(libc::EPERM) | Some(libc::EACCES)
        ) {
            LiveError::Permission {
                interface: interface.to_string(),
                source,
            }
        } else {
            LiveError::Io {
                interface: interface.to_string(),
                op,
                source,
            }
        }
    }
}

#[cfg(test)]
mod tests;
