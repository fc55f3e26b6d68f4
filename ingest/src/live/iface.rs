//! Looking up an interface: index, link type, whether it is up.

use super::LiveError;
use crate::decode::LinkType;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// What capture needs to know about an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Name.
    pub name: String,
    /// Kernel interface index (changes when the interface is deleted and created again).
    pub index: u32,
    /// pcap LINKTYPE of the frames a packet socket delivers (1 Ethernet, 101 raw IP).
    pub linktype: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
}

impl InterfaceInfo {
    /// The decoder's link type.
    pub fn link(&self) -> LinkType {
        LinkType::from_linktype(self.linktype)
    }
}

const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_NONE: u16 = 0xfffe;
const ARPHRD_TUNNEL: u16 = 768;
const ARPHRD_TUNNEL6: u16 = 769;
const ARPHRD_IPGRE: u16 = 778;
const ARPHRD_RAWIP: u16 = 519;

/// Looks `name` up: [`LiveError::NoSuchInterface`] when it does not exist.
pub fn interface_info(name: &str) -> Result<InterfaceInfo, LiveError> {
    let cname = CString::new(name).map_err(|_| LiveError::NoSuchInterface(name.into()))?;
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(LiveError::NoSuchInterface(name.into()));
    }
    // SAFETY: cname is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(LiveError::NoSuchInterface(name.into()));
    }
    // SAFETY: plain socket(2); the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(LiveError::io(
            name,
            "socket for ioctl",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = ifreq(name);
    // SAFETY: req is a valid ifreq with the interface name set.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(LiveError::NoSuchInterface(name.into()));
    }
    // SAFETY: SIOCGIFFLAGS filled ifru_flags.
    let flags = unsafe { req.ifr_ifru.ifru_flags } as i32;
    let mut req = ifreq(name);
    // SAFETY: as above.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } < 0 {
        return Err(LiveError::io(
            name,
            "reading the hardware type",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: SIOCGIFHWADDR filled ifru_hwaddr.
    let arphrd = unsafe { req.ifr_ifru.ifru_hwaddr.sa_family };
    let linktype = match arphrd {
        ARPHRD_ETHER | ARPHRD_LOOPBACK => 1,
        ARPHRD_NONE | ARPHRD_TUNNEL | ARPHRD_TUNNEL6 | ARPHRD_IPGRE | ARPHRD_RAWIP => 101,
        other => {
            return Err(LiveError::UnsupportedLink {
                interface: name.into(),
                arphrd: other,
            })
        }
    };
    Ok(InterfaceInfo {
        name: name.into(),
        index,
        linktype,
        up: flags & libc::IFF_UP != 0,
    })
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    req
}
