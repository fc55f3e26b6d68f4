//! `cemflow synth`: a realistic synthetic capture with injected faults and ground truth.

use anyhow::Context;
use cemflow_ingest::synth::{generate, FaultSpec, SynthConfig, DEFAULT_START_TS};
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

/// Arguments of `cemflow synth`.
#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Number of subscribers (users), spread evenly over the access elements.
    #[arg(long, default_value_t = 200)]
    pub users: u32,
    /// Number of access elements (named olt1..oltA).
    #[arg(long, default_value_t = 4)]
    pub access_elements: u32,
    /// Number of core elements (named bng1..bngC); access element i sits under core i mod C.
    #[arg(long, default_value_t = 2)]
    pub core_elements: u32,
    /// Number of content servers (one /24 each in 198.19.0.0/16), services taken
    /// round-robin from the catalog's web, video, voice, gaming, live and download apps.
    #[arg(long, default_value_t = 12)]
    pub servers: u32,
    /// Capture length in minutes.
    #[arg(long, default_value_t = 20)]
    pub minutes: u32,
    /// Faults, comma-separated LEVEL:ELEMENT:KIND[@START-END], e.g.
    /// `access:olt2:congestion@5-12m,server:video.example:slow@8-15m,home:198.18.0.7:loss@2-9m`.
    /// Levels: home (user IP or homeN), access (oltN), core (bngN), server (SNI, service,
    /// prefix, srvN or CATEGORY.example); kinds: congestion, loss, delay, slow.
    #[arg(long, default_value = "")]
    pub faults: String,
    /// PRNG seed (same seed and options, same bytes).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Capture start, epoch seconds.
    #[arg(long, default_value_t = DEFAULT_START_TS)]
    pub start: u64,
    /// Session arrival multiplier (1.0 ≈ 3 sessions per user-minute).
    #[arg(long, default_value_t = 1.0)]
    pub activity: f64,
    /// Fraction of real byte volumes for video, live and downloads (throughput and RTTs stay
    /// real; 1.0 is the real volume and makes very large captures).
    #[arg(long, default_value_t = SynthConfig::default().volume)]
    pub volume: f64,
    /// Share of web and video sessions carried over QUIC.
    #[arg(long, default_value_t = SynthConfig::default().quic_share)]
    pub quic_share: f64,
    /// Output capture (Ethernet pcap, ns timestamps).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// Ground truth JSON (topology, faults, affected users, expected verdicts).
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Topology CSV `user,home_id,access_element,core_element,region,plan_mbps`.
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,
}

fn create(p: &PathBuf) -> anyhow::Result<BufWriter<File>> {
    let f = File::create(p).with_context(|| format!("creating {}", p.display()))?;
    Ok(BufWriter::new(f))
}

/// Runs the command.
pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let faults =
        FaultSpec::parse_list(&args.faults).map_err(|e| crate::InputError(e.to_string()))?;
    let cfg = SynthConfig {
        users: args.users,
        access_elements: args.access_elements,
        core_elements: args.core_elements,
        servers: args.servers,
        minutes: args.minutes,
        start_ts: args.start,
        seed: args.seed,
        faults,
        activity: args.activity,
        volume: args.volume,
        quic_share: args.quic_share,
        scenario: format!(
            "synth users={} access={} core={} servers={} minutes={} seed={}",
            args.users,
            args.access_elements,
            args.core_elements,
            args.servers,
            args.minutes,
            args.seed
        ),
    };
    let pcap = create(&args.out)?;
    let truth = args.truth.as_ref().map(create).transpose()?;
    let topology = args.topology.as_ref().map(create).transpose()?;
    let t = std::time::Instant::now();
    let s = generate(&cfg, pcap, truth, topology).map_err(|e| match e {
        cemflow_ingest::synth::SynthError::Io { .. } => anyhow::Error::new(e),
        other => anyhow::Error::new(crate::InputError(other.to_string())),
    })?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "{} packets, {} flows, {} bytes written to {} in {secs:.1} s ({:.2} Mpps)",
        s.packets,
        s.flows,
        s.bytes,
        args.out.display(),
        s.packets as f64 / secs.max(1e-9) / 1e6
    );
    Ok(())
}
