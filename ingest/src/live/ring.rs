//! `TPACKET_V3` receive ring: the kernel fills fixed-size blocks of variable-length packet
//! records in a shared mapping; user space walks a block it owns (`TP_STATUS_USER`) and
//! hands it back (`TP_STATUS_KERNEL`). No system call per packet.

use super::iface::InterfaceInfo;
use super::socket::PacketSocket;
use super::{CaptureOptions, LiveError};
use std::os::fd::RawFd;
use std::sync::atomic::{fence, Ordering};

/// Size of one ring block (a multiple of the page size, far above the largest frame).
const BLOCK_SIZE: usize = 1 << 20;
/// Nominal frame slot, only used to validate the ring geometry (V3 packs frames tightly).
const FRAME_SIZE: usize = 2048;

/// One packet of a block, as the ring delivered it.
pub(crate) struct RingPacket<'a> {
    pub ts_ns: u64,
    pub data: &'a [u8],
    pub wire_len: u32,
    /// VLAN tag the kernel took off the frame: (TPID, TCI).
    pub vlan: Option<(u16, u16)>,
}

/// A bound, mapped `TPACKET_V3` socket.
pub(crate) struct Ring {
    sock: PacketSocket,
    map: *mut u8,
    map_len: usize,
    blocks: usize,
    current: usize,
}

// SAFETY: the mapping is owned by this value alone and only touched through `&mut self`.
unsafe impl Send for Ring {}

impl Ring {
    /// Opens the ring on `info`'s interface with the options' buffer size, filter,
    /// promiscuous mode and fanout group.
    pub(crate) fn open(
        info: &InterfaceInfo,
        opts: &CaptureOptions,
        filter: Option<&super::BpfProgram>,
        fanout_group: Option<u16>,
    ) -> Result<Ring, LiveError> {
        let sock = PacketSocket::new(&info.name)?;
        if let Some(f) = filter {
            sock.attach_filter(f)?;
        }
        sock.set_tpacket_v3()?;
        let blocks = (opts.buffer_bytes / BLOCK_SIZE).max(4);
        let req = libc::tpacket_req3 {
            tp_block_size: BLOCK_SIZE as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: FRAME_SIZE as u32,
            tp_frame_nr: (blocks * (BLOCK_SIZE / FRAME_SIZE)) as u32,
            tp_retire_blk_tov: opts.block_timeout.as_millis().clamp(1, 10_000) as u32,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sock.set_rx_ring(&req)?;
        let map_len = blocks * BLOCK_SIZE;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED,
                sock.raw(),
                0,
            )
        };
        let map = if map == libc::MAP_FAILED {
            // MAP_LOCKED fails under a small RLIMIT_MEMLOCK: map without it.
            // SAFETY: as above.
            let m = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    sock.raw(),
                    0,
                )
            };
            if m == libc::MAP_FAILED {
                return Err(LiveError::io(
                    &info.name,
                    "mapping the TPACKET_V3 ring",
                    std::io::Error::last_os_error(),
                ));
            }
            m
        } else {
            map
        };
        let ring = Ring {
            sock,
            map: map as *mut u8,
            map_len,
            blocks,
            current: 0,
        };
        ring.sock.bind(info.index)?;
        if opts.promiscuous {
            ring.sock.set_promiscuous(info.index)?;
        }
        if let Some(g) = fanout_group {
            ring.sock.join_fanout(g)?;
        }
        Ok(ring)
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.sock.raw()
    }

    /// True when the block at the read position is ready for user space.
    pub(crate) fn ready(&self) -> bool {
        self.block_status(self.current) & libc::TP_STATUS_USER != 0
    }

    fn block(&self, i: usize) -> *mut u8 {
        // SAFETY: i < blocks, so the offset stays inside the mapping.
        unsafe { self.map.add(i * BLOCK_SIZE) }
    }

    fn block_status(&self, i: usize) -> u32 {
        let bd = self.block(i) as *const libc::tpacket_block_desc;
        // SAFETY: the block descriptor lies at the block start; the kernel writes the status
        // concurrently, hence the volatile read followed by an acquire fence.
        let s = unsafe { std::ptr::addr_of!((*bd).hdr.bh1.block_status).read_volatile() };
        fence(Ordering::Acquire);
        s
    }

    /// Hands every packet of up to `max_blocks` ready blocks to `f`, returning blocks to
    /// the kernel as they are done. Returns (packets, packets cut short by the ring).
    pub(crate) fn read<F: FnMut(RingPacket<'_>)>(
        &mut self,
        max_blocks: usize,
        mut f: F,
    ) -> (u64, u64) {
        let mut packets = 0u64;
        let mut cut = 0u64;
        for _ in 0..max_blocks {
            if !self.ready() {
                break;
            }
            let base = self.block(self.current);
            let bd = base as *const libc::tpacket_block_desc;
            // SAFETY: the block is ours (TP_STATUS_USER) until we hand it back below.
            let (num, first) = unsafe {
                let h = std::ptr::addr_of!((*bd).hdr.bh1).read();
                (h.num_pkts as usize, h.offset_to_first_pkt as usize)
            };
            // SAFETY: the block is BLOCK_SIZE bytes of our mapping.
            let block = unsafe { std::slice::from_raw_parts(base as *const u8, BLOCK_SIZE) };
            let mut off = first;
            let hdr_len = std::mem::size_of::<libc::tpacket3_hdr>();
            for i in 0..num {
                if off + hdr_len > BLOCK_SIZE {
                    break;
                }
                // SAFETY: bounds checked above; the header is read unaligned-safe.
                let h: libc::tpacket3_hdr = unsafe {
                    std::ptr::read_unaligned(block.as_ptr().add(off) as *const libc::tpacket3_hdr)
                };
                let start = off + h.tp_mac as usize;
                let end = start + h.tp_snaplen as usize;
                let Some(data) = block.get(start..end) else {
                    break;
                };
                let vlan = (h.tp_status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
                    let tpid = if h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        h.hv1.tp_vlan_tpid
                    } else {
                        0x8100
                    };
                    (tpid, h.hv1.tp_vlan_tci as u16)
                });
                if h.tp_snaplen < h.tp_len {
                    cut += 1;
                }
                packets += 1;
                f(RingPacket {
                    ts_ns: h.tp_sec as u64 * 1_000_000_000 + h.tp_nsec as u64,
                    data,
                    wire_len: h.tp_len,
                    vlan,
                });
                if i + 1 < num {
                    if h.tp_next_offset == 0 {
                        break;
                    }
                    off += h.tp_next_offset as usize;
                }
            }
            let bd = base as *mut libc::tpacket_block_desc;
            fence(Ordering::Release);
            // SAFETY: hands the block back to the kernel; we no longer read it.
            unsafe {
                std::ptr::addr_of_mut!((*bd).hdr.bh1.block_status)
                    .write_volatile(libc::TP_STATUS_KERNEL)
            };
            self.current = (self.current + 1) % self.blocks;
        }
        (packets, cut)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `open`; nothing borrows it any more.
        unsafe {
            libc::munmap(self.map as *mut libc::c_void, self.map_len);
        }
    }
}
