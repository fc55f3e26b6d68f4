//! [`LiveCapture`]: one worker's sockets, one per interface, polled together, reopened when
//! an interface comes back after going down.

use super::bpf::BpfProgram;
use super::iface::{interface_info, InterfaceInfo};
use super::pnet_rx::{wall_clock_ns, PnetReader};
use super::ring::Ring;
use super::socket::{statistics, take_error};
use super::{Backend, CaptureOptions, InterfaceCounters, LiveError};
use crate::decode::LinkType;
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// One captured frame, borrowed from the ring or the read buffer.
#[derive(Clone, Copy, Debug)]
pub struct LivePacket<'a> {
    /// Kernel receive timestamp (TPACKET_V3) or wall clock at read (pnet), ns since the
    /// Unix epoch.
    pub ts_ns: u64,
    /// Position of the interface in the list given to [`LiveCapture::open`].
    pub interface: usize,
    /// Link type of the frame.
    pub linktype: LinkType,
    /// The frame.
    pub data: &'a [u8],
    /// Length on the wire.
    pub wire_len: u32,
}

/// Frames read from one socket before the next socket gets its turn.
const BATCH: usize = 4096;
/// Ring blocks read from one socket before the next socket gets its turn.
const BATCH_BLOCKS: usize = 8;
/// How often a down interface is tried again, and kernel counters are read.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

enum Reader {
    Ring(Ring),
    Pnet(PnetReader),
}

impl Reader {
    fn fd(&self) -> RawFd {
        match self {
            Reader::Ring(r) => r.fd(),
            Reader::Pnet(p) => p.fd(),
        }
    }
}

struct Slot {
    name: String,
    info: InterfaceInfo,
    reader: Option<Reader>,
    counters: InterfaceCounters,
    fanout_group: Option<u16>,
}

/// One worker's capture on a set of interfaces.
pub struct LiveCapture {
    slots: Vec<Slot>,
    opts: CaptureOptions,
    filters: HashMap<u32, BpfProgram>,
    pollfds: Vec<libc::pollfd>,
    /// Frame with a VLAN tag put back (TPACKET_V3 delivers the tag beside the frame).
    scratch: Vec<u8>,
    next_housekeeping: Instant,
}

impl LiveCapture {
    /// Opens every interface in `interfaces` (all must exist; a down one is opened when it
    /// comes up). `filters` maps a pcap LINKTYPE to the compiled `--bpf` program for it.
    pub fn open(
        interfaces: &[String],
        opts: &CaptureOptions,
        filters: &HashMap<u32, BpfProgram>,
    ) -> Result<LiveCapture, LiveError> {
        let mut slots = Vec::with_capacity(interfaces.len());
        for (i, name) in interfaces.iter().enumerate() {
            let info = interface_info(name)?;
            let fanout_group = opts.fanout.map(|base| base.wrapping_add(i as u16));
            let mut slot = Slot {
                name: name.clone(),
                info: info.clone(),
                reader: None,
                counters: InterfaceCounters {
                    interface: name.clone(),
                    ..InterfaceCounters::default()
                },
                fanout_group,
            };
            if info.up {
                slot.reader = Some(open_reader(&info, opts, filters, fanout_group)?);
                slot.counters.up = true;
            } else {
                tracing::warn!(interface = %name, "interface is down; capturing once it is up");
            }
            slots.push(slot);
        }
        Ok(LiveCapture {
            slots,
            opts: opts.clone(),
            filters: filters.clone(),
            pollfds: Vec::new(),
            scratch: Vec::with_capacity(super::MAX_FRAME + 4),
            next_housekeeping: Instant::now() + HOUSEKEEPING,
        })
    }

    /// Counters per interface (this worker's share), in the order of `open`'s list.
    pub fn counters(&self) -> impl Iterator<Item = &InterfaceCounters> + '_ {
        self.slots.iter().map(|s| &s.counters)
    }

    /// Interfaces captured, in order.
    pub fn interfaces(&self) -> impl Iterator<Item = &str> + '_ {
        self.slots.iter().map(|s| s.name.as_str())
    }

    /// Waits up to `timeout` for frames on any interface and hands each to `f`; returns the
    /// frames delivered (0 on timeout or a signal). Once a second it also reads the kernel
    /// counters and tries to reopen interfaces that went down.
    pub fn poll<F: FnMut(LivePacket<'_>)>(&mut self, timeout: Duration, mut f: F) -> u64 {
        if Instant::now() >= self.next_housekeeping {
            self.housekeeping();
        }
        let mut n = self.read_ready(&mut f);
        if n > 0 {
            return n;
        }
        self.pollfds.clear();
        for s in &self.slots {
            if let Some(r) = &s.reader {
                self.pollfds.push(libc::pollfd {
                    fd: r.fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        if self.pollfds.is_empty() {
            std::thread::sleep(timeout.min(HOUSEKEEPING));
            return 0;
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: pollfds is a valid array of pollfd of the given length.
        let r = unsafe {
            libc::poll(
                self.pollfds.as_mut_ptr(),
                self.pollfds.len() as libc::nfds_t,
                ms,
            )
        };
        if r <= 0 {
            return 0;
        }
        // Sockets reporting an error (interface down or gone) are closed for reopening.
        let failed: Vec<RawFd> = self
            .pollfds
            .iter()
            .filter(|p| p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0)
            .map(|p| p.fd)
            .collect();
        for fd in failed {
            if let Some(i) = self
                .slots
                .iter()
                .position(|s| s.reader.as_ref().is_some_and(|r| r.fd() == fd))
            {
                let err = take_error(fd)
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "socket error".into());
                self.close_slot(i, &err);
            }
        }
        n += self.read_ready(&mut f);
        n
    }

    /// Reads what is queued on every open socket, without waiting.
    fn read_ready<F: FnMut(LivePacket<'_>)>(&mut self, f: &mut F) -> u64 {
        let mut total = 0;
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let linktype = slot.info.link();
            let ethernet = slot.info.linktype == 1;
            let scratch = &mut self.scratch;
            let result = match &mut slot.reader {
                None => continue,
                Some(Reader::Ring(ring)) => {
                    let mut bytes = 0u64;
                    let (n, cut) = ring.read(BATCH_BLOCKS, |p| {
                        // The kernel strips the VLAN tag; put it back (it was on the wire).
                        let (data, wire_len) = match p.vlan {
                            Some((tpid, tci)) if ethernet && p.data.len() >= 12 => {
                                scratch.clear();
                                scratch.extend_from_slice(&p.data[..12]);
                                scratch.extend_from_slice(&tpid.to_be_bytes());
                                scratch.extend_from_slice(&tci.to_be_bytes());
                                scratch.extend_from_slice(&p.data[12..]);
                                (&scratch[..], p.wire_len.saturating_add(4))
                            }
                            _ => (p.data, p.wire_len),
                        };
                        bytes += data.len() as u64;
                        f(LivePacket {
                            ts_ns: p.ts_ns,
                            interface: i,
                            linktype,
                            data,
                            wire_len,
                        });
                    });
                    Ok((n, cut, bytes))
                }
                Some(Reader::Pnet(pnet)) => {
                    let mut bytes = 0u64;
                    pnet.read(BATCH, |ts_ns, data| {
                        bytes += data.len() as u64;
                        f(LivePacket {
                            ts_ns,
                            interface: i,
                            linktype,
                            data,
                            wire_len: data.len() as u32,
                        });
                    })
                    .map(|(n, cut)| (n, cut, bytes))
                }
            };
            match result {
                Ok((n, cut, bytes)) => {
                    let c = &mut self.slots[i].counters;
                    c.packets += n;
                    c.bytes += bytes;
                    c.own_drops += cut;
                    total += n;
                }
                Err(e) => self.close_slot(i, &e.to_string()),
            }
        }
        total
    }

    /// Closes slot `i` after an error, keeping its kernel counters.
    fn close_slot(&mut self, i: usize, reason: &str) {
        let slot = &mut self.slots[i];
        if let Some(r) = slot.reader.take() {
            if let Ok((_, drops)) = statistics(r.fd(), &slot.name) {
                slot.counters.kernel_drops += drops;
            }
            slot.counters.reconnects += 1;
            slot.counters.up = false;
            tracing::warn!(
                interface = %slot.name,
                "interface went down or away ({reason}); reconnecting once it is back"
            );
        }
    }

    /// Reads kernel drop counters and reopens interfaces that are back.
    fn housekeeping(&mut self) {
        self.next_housekeeping = Instant::now() + HOUSEKEEPING;
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            match &slot.reader {
                Some(r) => {
                    if let Ok((_, drops)) = statistics(r.fd(), &slot.name) {
                        slot.counters.kernel_drops += drops;
                    }
                }
                None => {
                    let Ok(info) = interface_info(&slot.name) else {
                        continue;
                    };
                    if !info.up {
                        continue;
                    }
                    match open_reader(&info, &self.opts, &self.filters, slot.fanout_group) {
                        Ok(r) => {
                            tracing::warn!(
                                interface = %slot.name,
                                index = info.index,
                                "interface is back; capturing again"
                            );
                            slot.info = info;
                            slot.reader = Some(r);
                            slot.counters.up = true;
                        }
                        Err(e) => {
                            tracing::debug!(interface = %slot.name, "reopening failed: {e}");
                        }
                    }
                }
            }
        }
    }

    /// Reads the final kernel counters (call before reporting at shutdown).
    pub fn refresh_counters(&mut self) {
        for slot in &mut self.slots {
            if let Some(r) = &slot.reader {
                if let Ok((_, drops)) = statistics(r.fd(), &slot.name) {
                    slot.counters.kernel_drops += drops;
                }
            }
        }
    }
}

/// Now in ns since the Unix epoch (the clock idle ticks follow).
pub fn now_ns() -> u64 {
    wall_clock_ns()
}

fn open_reader(
    info: &InterfaceInfo,
    opts: &CaptureOptions,
    filters: &HashMap<u32, BpfProgram>,
    fanout_group: Option<u16>,
) -> Result<Reader, LiveError> {
    let filter = filters.get(&info.linktype);
    Ok(match opts.backend {
        Backend::Tpacket => Reader::Ring(Ring::open(info, opts, filter, fanout_group)?),
        Backend::Pnet => Reader::Pnet(PnetReader::open(info, opts, filter, fanout_group)?),
    })
}
