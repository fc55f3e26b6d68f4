//! pnet's datalink channel on a socket cemflow prepared (receive buffer, BPF filter).

use super::iface::InterfaceInfo;
use super::socket::PacketSocket;
use super::{CaptureOptions, LiveError, MAX_FRAME};
use pnet::datalink::{self, DataLinkReceiver, FanoutOption, FanoutType, NetworkInterface};
use std::os::fd::RawFd;
use std::time::Duration;

/// A pnet receiver and its socket's descriptor (owned and closed by pnet).
pub(crate) struct PnetReader {
    rx: Box<dyn DataLinkReceiver>,
    fd: RawFd,
}

impl PnetReader {
    /// Opens pnet's channel on `info`'s interface.
    pub(crate) fn open(
        info: &InterfaceInfo,
        opts: &CaptureOptions,
        filter: Option<&super::BpfProgram>,
        fanout_group: Option<u16>,
    ) -> Result<PnetReader, LiveError> {
        let sock = PacketSocket::new(&info.name)?;
        sock.set_receive_buffer(opts.buffer_bytes)?;
        if let Some(f) = filter {
            sock.attach_filter(f)?;
        }
        let fd = sock.into_raw();
        let iface = NetworkInterface {
            name: info.name.clone(),
            description: String::new(),
            index: info.index,
            mac: None,
            ips: Vec::new(),
            flags: 0,
        };
        let config = datalink::linux::Config {
            // One byte more than the largest frame: a read that fills it was cut.
            read_buffer_size: MAX_FRAME + 1,
            write_buffer_size: 64,
            // Zero: `next` returns TimedOut at once when nothing is queued (the capture
            // polls all its sockets itself).
            read_timeout: Some(Duration::ZERO),
            write_timeout: None,
            channel_type: datalink::ChannelType::Layer2,
            fanout: fanout_group.map(|g| FanoutOption {
                group_id: g,
                fanout_type: FanoutType::HASH,
                defrag: false,
                rollover: false,
            }),
            promiscuous: opts.promiscuous,
            socket_fd: Some(fd),
        };
        match datalink::linux::channel(&iface, config) {
            Ok(datalink::Channel::Ethernet(_tx, rx)) => Ok(PnetReader { rx, fd }),
            Ok(_) => Err(LiveError::Io {
                interface: info.name.clone(),
                op: "opening the pnet channel",
                source: std::io::Error::other("unexpected channel type"),
            }),
            // pnet closed the descriptor on error.
            Err(e) => Err(LiveError::io(&info.name, "opening the pnet channel", e)),
        }
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    /// Reads up to `max` queued frames without waiting, each stamped with the wall clock.
    /// Returns (packets, frames cut by the buffer).
    pub(crate) fn read<F: FnMut(u64, &[u8])>(
        &mut self,
        max: usize,
        mut f: F,
    ) -> std::io::Result<(u64, u64)> {
        let mut packets = 0;
        let mut cut = 0;
        for _ in 0..max {
            match self.rx.next() {
                Ok(data) => {
                    packets += 1;
                    if data.len() > MAX_FRAME {
                        cut += 1;
                    }
                    f(wall_clock_ns(), data);
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => break,
                Err(e) => return Err(e),
            }
        }
        Ok((packets, cut))
    }
}

/// Now, ns since the Unix epoch.
pub(crate) fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
