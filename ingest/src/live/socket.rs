//! An AF_PACKET socket and the options capture sets on it.

use super::bpf::BpfProgram;
use super::LiveError;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A packet socket bound to one interface (or about to be).
pub(crate) struct PacketSocket {
    fd: OwnedFd,
    interface: String,
}

impl PacketSocket {
    /// A raw packet socket that receives nothing until [`PacketSocket::bind`] (protocol 0),
    /// so no frame of another interface slips in before the bind.
    pub(crate) fn new(interface: &str) -> Result<Self, LiveError> {
        // SAFETY: plain socket(2).
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(LiveError::io(
                interface,
                "opening a packet socket",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(PacketSocket {
            // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            interface: interface.to_string(),
        })
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Gives the descriptor away (to pnet, which closes it).
    pub(crate) fn into_raw(self) -> RawFd {
        std::os::fd::IntoRawFd::into_raw_fd(self.fd)
    }

    fn setsockopt<T>(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        value: &T,
        op: &'static str,
    ) -> Result<(), LiveError> {
        // SAFETY: value points to a live T of the given size.
        let r = unsafe {
            libc::setsockopt(
                self.raw(),
                level,
                name,
                value as *const T as *const libc::c_void,
                std::mem::size_of::<T>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(LiveError::io(
                &self.interface,
                op,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// A receive buffer of `bytes` (`SO_RCVBUFFORCE`, which ignores `net.core.rmem_max`
    /// but needs CAP_NET_ADMIN; else `SO_RCVBUF`, capped by the sysctl).
    pub(crate) fn set_receive_buffer(&self, bytes: usize) -> Result<(), LiveError> {
        let v = bytes.min(i32::MAX as usize) as libc::c_int;
        if self
            .setsockopt(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &v, "SO_RCVBUFFORCE")
            .is_err()
        {
            self.setsockopt(libc::SOL_SOCKET, libc::SO_RCVBUF, &v, "setting SO_RCVBUF")?;
        }
        Ok(())
    }

    /// Attaches a classic BPF program: only frames it accepts are delivered.
    pub(crate) fn attach_filter(&self, prog: &BpfProgram) -> Result<(), LiveError> {
        let mut insns: Vec<libc::sock_filter> = prog
            .instructions
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        let fprog = libc::sock_fprog {
            len: insns.len() as libc::c_ushort,
            filter: insns.as_mut_ptr(),
        };
        self.setsockopt(
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &fprog,
            "attaching the BPF filter",
        )
    }

    /// Selects the `TPACKET_V3` ring format.
    pub(crate) fn set_tpacket_v3(&self) -> Result<(), LiveError> {
        let v: libc::c_int = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        self.setsockopt(
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &v,
            "selecting TPACKET_V3",
        )
    }

    /// Sets up the receive ring.
    pub(crate) fn set_rx_ring(&self, req: &libc::tpacket_req3) -> Result<(), LiveError> {
        self.setsockopt(
            libc::SOL_PACKET,
            libc::PACKET_RX_RING,
            req,
            "setting up the TPACKET_V3 ring",
        )
    }

    /// Binds to the interface, receiving every protocol.
    pub(crate) fn bind(&self, ifindex: u32) -> Result<(), LiveError> {
        // SAFETY: sockaddr_ll is plain old data.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: addr is a valid sockaddr_ll of the given size.
        let r = unsafe {
            libc::bind(
                self.raw(),
                &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(LiveError::io(
                &self.interface,
                "binding to the interface",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Promiscuous mode for as long as the socket lives.
    pub(crate) fn set_promiscuous(&self, ifindex: u32) -> Result<(), LiveError> {
        // SAFETY: packet_mreq is plain old data.
        let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
        mreq.mr_ifindex = ifindex as i32;
        mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
        self.setsockopt(
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mreq,
            "entering promiscuous mode",
        )
    }

    /// Joins fanout group `group` hashing flows (symmetric) across its members.
    pub(crate) fn join_fanout(&self, group: u16) -> Result<(), LiveError> {
        let arg: libc::c_uint = group as libc::c_uint | (libc::PACKET_FANOUT_HASH << 16);
        self.setsockopt(
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            &arg,
            "joining the PACKET_FANOUT group",
        )
    }
}

/// `PACKET_STATISTICS` of a packet socket (the V3 layout starts with the V1 one, and the
/// kernel copies no more than the socket's version defines).
pub(crate) fn statistics(fd: RawFd, interface: &str) -> Result<(u64, u64), LiveError> {
    // SAFETY: tpacket_stats_v3 is plain old data.
    let mut st: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
    // SAFETY: st and len are valid for writing.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            &mut st as *mut libc::tpacket_stats_v3 as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return Err(LiveError::io(
            interface,
            "reading PACKET_STATISTICS",
            std::io::Error::last_os_error(),
        ));
    }
    // tp_packets counts drops too.
    Ok((
        st.tp_packets.saturating_sub(st.tp_drops) as u64,
        st.tp_drops as u64,
    ))
}

/// `SO_ERROR` of a socket, if set.
pub(crate) fn take_error(fd: RawFd) -> Option<std::io::Error> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err and len are valid for writing.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return Some(std::io::Error::last_os_error());
    }
    (err != 0).then(|| std::io::Error::from_raw_os_error(err))
}
