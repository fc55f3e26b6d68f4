//! The collector's UDP socket: bound with a large receive buffer, read with a timeout
//! (so the caller can check for shutdown), and the kernel's drop counter for it.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Largest UDP payload.
pub const MAX_DATAGRAM: usize = 65_535;

/// A bound collector socket.
#[derive(Debug)]
pub struct UdpSource {
    socket: UdpSocket,
    inode: Option<u64>,
    rcvbuf: usize,
}

impl UdpSource {
    /// Binds `addr` (`host:port`), asks for a receive buffer of `rcvbuf` bytes
    /// (`SO_RCVBUFFORCE` when permitted, else `SO_RCVBUF`, capped by the kernel) and sets a
    /// read timeout of `poll`.
    pub fn bind(addr: &str, rcvbuf: usize, poll: Duration) -> io::Result<UdpSource> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let socket = UdpSocket::bind(&addrs[..])?;
        set_rcvbuf(&socket, rcvbuf);
        socket.set_read_timeout(Some(poll))?;
        let inode = socket_inode(&socket);
        let rcvbuf = get_rcvbuf(&socket).unwrap_or(0);
        Ok(UdpSource {
            socket,
            inode,
            rcvbuf,
        })
    }

    /// The bound address (with the actual port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The receive buffer the kernel granted, bytes.
    pub fn rcvbuf(&self) -> usize {
        self.rcvbuf
    }

    /// Receives one datagram into `buf`; `Ok(None)` when the read timeout passed.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        match self.socket.recv_from(buf) {
            Ok(r) => Ok(Some(r)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Datagrams the kernel dropped for this socket (receive buffer full), from
    /// `/proc/net/udp{,6}`; `None` where unavailable.
    pub fn kernel_drops(&self) -> Option<u64> {
        let inode = self.inode?;
        ["/proc/net/udp", "/proc/net/udp6"]
            .iter()
            .find_map(|p| drops_in(&std::fs::read_to_string(p).ok()?, inode))
    }
}

/// The `drops` column of the row of socket `inode` in a `/proc/net/udp` table.
fn drops_in(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
        (cols.get(9)?.parse::<u64>().ok()? == inode).then(|| cols.get(12)?.parse().ok())?
    })
}

fn socket_inode(s: &UdpSocket) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", s.as_raw_fd())).ok()?;
    let l = link.to_string_lossy();
    l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

fn set_rcvbuf(s: &UdpSocket, bytes: usize) {
    let v: libc::c_int = bytes.min(i32::MAX as usize) as libc::c_int;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let p = (&v as *const libc::c_int).cast();
    // SAFETY: valid fd, pointer to a live c_int of the given length.
    let forced = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            p,
            len,
        )
    };
    if forced != 0 {
        // SAFETY: as above.
        unsafe { libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, p, len) };
    }
}

fn get_rcvbuf(s: &UdpSocket) -> Option<usize> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid fd, out-pointers to live values of the given length.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(v as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_column_of_the_socket() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                 1: 0100007F:9C47 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n";
        assert_eq!(drops_in(t, 4242), Some(17));
        assert_eq!(drops_in(t, 4243), None);
    }

    #[test]
    fn loopback_datagram_round_trip() {
        let src = UdpSource::bind("127.0.0.1:0", 1 << 20, Duration::from_millis(200)).unwrap();
        let to = src.local_addr().unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"hello", to).unwrap();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let (n, from) = src.recv(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from, tx.local_addr().unwrap());
        assert_eq!(src.kernel_drops(), Some(0));
    }
}
